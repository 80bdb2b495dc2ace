//! A principal's scope turned into SQL: the `WHERE` conditions that keep a read within what the
//! domain's `Scope` lets its holder see. Storage does not decide who sees what: it translates
//! the sets `guichet_domain::access` computed, so a list of thousands of rows is filtered by the
//! database instead of row by row in Rust.
//!
//! A condition is SQL text with numbered parameters (`$n`, both engines) and the values to bind,
//! in order; `Filter` numbers them from where the caller's own parameters end.

use guichet_domain::access::{CollectiviteSet, ServiceSet};
use guichet_domain::{CollectiviteKind, ServiceKind};

/// A value bound to a condition's parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Text(String),
}

/// SQL conditions under construction, with their parameters numbered after `first - 1` others.
#[derive(Debug, Clone)]
pub struct Filter {
    next: usize,
    pub args: Vec<Arg>,
}

impl Filter {
    /// A filter whose first parameter is `$first` (the query's own come before).
    pub fn starting_at(first: usize) -> Self {
        Filter {
            next: first,
            args: Vec::new(),
        }
    }

    fn param(&mut self, arg: Arg) -> String {
        let n = self.next;
        self.next += 1;
        self.args.push(arg);
        format!("${n}")
    }

    /// An integer parameter for a caller's own condition.
    pub fn int(&mut self, value: i64) -> String {
        self.param(Arg::Int(value))
    }

    /// A text parameter for a caller's own condition.
    pub fn text_param(&mut self, value: &str) -> String {
        self.text(value)
    }

    fn text(&mut self, value: &str) -> String {
        self.param(Arg::Text(value.to_string()))
    }

    /// The condition that keeps only the services of `set`; `alias` names the `services` row.
    pub fn services(&mut self, set: &ServiceSet, alias: &str) -> String {
        match set {
            ServiceSet::All => "1 = 1".into(),
            ServiceSet::Nothing => "1 = 0".into(),
            ServiceSet::Own(id) => format!("{alias}.id = {}", self.param(Arg::Int(*id))),
            ServiceSet::Region { own, region } => {
                let own = self.param(Arg::Int(*own));
                let kind = self.text(ServiceKind::PrefectureDepartementale.slug());
                let region = self.text(region);
                format!(
                    "({alias}.id = {own} OR ({alias}.kind = {kind} AND {alias}.region_code = {region}))"
                )
            }
        }
    }

    /// The condition that keeps only rows whose `column` (a service id) names a service of `set`,
    /// on the column itself so that an index on it serves (a dossier's `service_id`): the same
    /// rule as [`Filter::services`]. A row without a service (NULL) is never kept.
    pub fn service_ids(&mut self, set: &ServiceSet, column: &str) -> String {
        match set {
            ServiceSet::All => format!("{column} IS NOT NULL"),
            ServiceSet::Nothing => "1 = 0".into(),
            ServiceSet::Own(id) => format!("{column} = {}", self.param(Arg::Int(*id))),
            ServiceSet::Region { own, region } => {
                let own = self.param(Arg::Int(*own));
                let kind = self.text(ServiceKind::PrefectureDepartementale.slug());
                let region = self.text(region);
                format!(
                    "({column} = {own} OR {column} IN (SELECT x.id FROM services x \
                     WHERE x.kind = {kind} AND x.region_code = {region}))"
                )
            }
        }
    }

    /// The condition that keeps only the collectivités of `set`, the collectivité being named by
    /// the columns `kind` (slug) and `code`, and placed with the referential of `vintage`.
    pub fn collectivites(
        &mut self,
        set: &CollectiviteSet,
        kind: &str,
        code: &str,
        vintage: i64,
    ) -> String {
        let slug = |k: CollectiviteKind| k.slug();
        match set {
            CollectiviteSet::All => "1 = 1".into(),
            CollectiviteSet::Nothing => "1 = 0".into(),
            CollectiviteSet::Listed(refs) if refs.is_empty() => "1 = 0".into(),
            CollectiviteSet::Listed(refs) => {
                let alternatives: Vec<String> = refs
                    .iter()
                    .map(|r| {
                        let k = self.text(r.kind.slug());
                        let c = self.text(&r.code);
                        format!("({kind} = {k} AND {code} = {c})")
                    })
                    .collect();
                format!("({})", alternatives.join(" OR "))
            }
            // Régions are left out on purpose: see `CollectiviteSet::Departement`.
            CollectiviteSet::Departement(dep) => {
                let v = self.param(Arg::Int(vintage));
                let d = self.text(dep);
                let (commune, epci, departement) = (
                    self.text(slug(CollectiviteKind::Commune)),
                    self.text(slug(CollectiviteKind::Epci)),
                    self.text(slug(CollectiviteKind::Departement)),
                );
                format!(
                    "(({kind} = {commune} AND EXISTS (SELECT 1 FROM ref_communes x \
                       WHERE x.vintage = {v} AND x.insee = {code} AND x.departement_code = {d})) \
                     OR ({kind} = {epci} AND EXISTS (SELECT 1 FROM ref_communes x \
                       WHERE x.vintage = {v} AND x.epci_siren = {code} AND x.departement_code = {d})) \
                     OR ({kind} = {departement} AND {code} = {d}))"
                )
            }
            CollectiviteSet::Region(reg) => {
                let v = self.param(Arg::Int(vintage));
                let r = self.text(reg);
                let (commune, epci, departement, region) = (
                    self.text(slug(CollectiviteKind::Commune)),
                    self.text(slug(CollectiviteKind::Epci)),
                    self.text(slug(CollectiviteKind::Departement)),
                    self.text(slug(CollectiviteKind::Region)),
                );
                format!(
                    "(({kind} = {commune} AND EXISTS (SELECT 1 FROM ref_communes x \
                       WHERE x.vintage = {v} AND x.insee = {code} AND x.region_code = {r})) \
                     OR ({kind} = {epci} AND EXISTS (SELECT 1 FROM ref_communes x \
                       WHERE x.vintage = {v} AND x.epci_siren = {code} AND x.region_code = {r})) \
                     OR ({kind} = {departement} AND EXISTS (SELECT 1 FROM ref_departements x \
                       WHERE x.vintage = {v} AND x.code = {code} AND x.region_code = {r})) \
                     OR ({kind} = {region} AND {code} = {r}))"
                )
            }
        }
    }

    /// The condition that keeps only rows whose `column` is one of `values` (any row when
    /// `values` is empty).
    pub fn text_in(&mut self, column: &str, values: &[&str]) -> String {
        if values.is_empty() {
            return "1 = 1".into();
        }
        let params: Vec<String> = values.iter().map(|v| self.text(v)).collect();
        format!("{column} IN ({})", params.join(", "))
    }

    /// Binds the filter's values, in order, after the query's own.
    pub fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for a in &self.args {
            query = match a {
                Arg::Int(i) => query.bind(*i),
                Arg::Text(t) => query.bind(t.clone()),
            };
        }
        query
    }

    /// Like `bind`, for a scalar query.
    pub fn bind_scalar<'q, O>(
        &self,
        mut query: sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
        for a in &self.args {
            query = match a {
                Arg::Int(i) => query.bind(*i),
                Arg::Text(t) => query.bind(t.clone()),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_after_the_query_s_own() {
        let mut f = Filter::starting_at(2);
        let sql = f.services(
            &ServiceSet::Region {
                own: 7,
                region: "11".into(),
            },
            "s",
        );
        assert_eq!(sql, "(s.id = $2 OR (s.kind = $3 AND s.region_code = $4))");
        assert_eq!(
            f.args,
            [
                Arg::Int(7),
                Arg::Text("prefecture-departementale".into()),
                Arg::Text("11".into())
            ]
        );
        assert_eq!(f.services(&ServiceSet::Own(3), "s"), "s.id = $5");
    }
}
