//! Guichet's pure domain: the types that carry the rules (money, codes, territories, roles and
//! scopes, dossiers and their states, the audit chain). Nothing here performs I/O or reads the
//! clock; callers pass time in.
//!
//! Error messages are in French because they reach users unchanged (UI and API `detail`).

pub mod access;
pub mod api_token;
pub mod audit;
pub mod codes;
pub mod dossier;
pub mod money;
pub mod password;
pub mod territory;
pub mod text;

pub use access::{Action, Area, Principal, Role, Scope, ServiceKind, ServiceScope};
pub use codes::{DepartementCode, InseeCode, PostalCode, RegionCode, Siren, Siret, Vintage};
pub use dossier::{DossierNumber, State as DossierState};
pub use money::{Cents, Rate};
pub use territory::{CollectiviteKind, CollectiviteRef, TerritoryFootprint};
