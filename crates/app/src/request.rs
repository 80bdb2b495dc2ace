//! The request being served, as far as the application needs to know it: its identifier, set by
//! the web layer around each request (a task-local, so that no use case has to pass it along)
//! and read where it is recorded: audit entries and the reference of an internal error.

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `f` as part of the request `id`.
pub async fn scope<F: Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The identifier of the request being served, if any (none in the CLI and background work).
pub fn current_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_id_is_seen_inside_its_scope_only() {
        assert_eq!(super::current_id(), None);
        let inner = super::scope("abc".into(), async {
            tokio::task::yield_now().await;
            super::current_id()
        })
        .await;
        assert_eq!(inner.as_deref(), Some("abc"));
        assert_eq!(super::current_id(), None);
    }
}
