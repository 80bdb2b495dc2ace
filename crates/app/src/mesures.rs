//! The public catalogue of measures, read from the programme: what each measure funds, who may
//! apply, its rates and caps in each territory, its dates said relative to today, its
//! instructing service and its sources by title. Pure functions of the programme and a date
//! (no database, no clock read here: the caller passes today), shared by the pages and the API.

use chrono::NaiveDate;
use guichet_programme::rules::{ParamDef, RuleSet};
use guichet_programme::value::french_rate;
use guichet_programme::{Measure, Programme, Type, Value};
use serde::Serialize;

/// A territory whose rules apply: the national default (`code: None`) or a région's variant.
#[derive(Debug, Clone, Serialize)]
pub struct Territory {
    /// Région code of the variant (`11`), absent for the national rules.
    pub code: Option<String>,
    pub name: String,
}

/// The territories the programme distinguishes: the national rules, then each variant.
pub fn territories(p: &Programme) -> Vec<Territory> {
    std::iter::once(&p.rules.national)
        .chain(&p.rules.variants)
        .map(|s| Territory {
            code: s.code.clone(),
            name: territory_name(s),
        })
        .collect()
}

fn territory_name(s: &RuleSet) -> String {
    match s.code {
        None => "Règles nationales".into(),
        Some(_) => s.name.clone(),
    }
}

/// A measure in the list.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureBrief {
    pub id: String,
    pub name: String,
    pub summary: String,
    pub beneficiaries: String,
    /// Who instructs, in words.
    pub instruction: String,
    /// Where the filing window stands today, in words.
    pub window: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AxisBrief {
    pub id: String,
    pub name: String,
    pub pilot: String,
    /// Formatted amount (`30 M€`), when the axis has its own envelope.
    pub envelope: Option<String>,
    pub measures: Vec<MeasureBrief>,
}

/// A value a measure reads (a rate, a flat amount, a cap, a threshold, a date), in words.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Term {
    /// The parameter's name in the programme files (for machines; pages show `title`).
    pub name: String,
    pub title: String,
    /// The value in force, in French (`80 %`, `5 000 €`, `15 000 habitants`, `31/10/2022`).
    pub value: String,
}

/// A date of the measure's calendar, said relative to today.
#[derive(Debug, Clone, Serialize)]
pub struct DateLine {
    pub title: String,
    pub date: NaiveDate,
    /// `25/01/2021`.
    pub display: String,
    /// `dans 12 jours`, `aujourd’hui`, `il y a 4 mois`.
    pub relative: String,
    pub past: bool,
}

/// What a measure offers in one territory.
#[derive(Debug, Clone, Serialize)]
pub struct TerritoryTerms {
    pub territory: Territory,
    /// The measure is not offered there (its message), or `None`.
    pub excluded: Option<String>,
    /// Rates, flat amounts, caps and the thresholds between them.
    pub amounts: Vec<Term>,
    /// Dates read by its conditions (opening, waves, deadlines), in date order.
    pub dates: Vec<DateLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceRef {
    /// As cited in the programme files (`[000]`).
    pub id: String,
    pub title: String,
}

/// Everything the measure page says.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureSheet {
    pub brief: MeasureBrief,
    pub axis: String,
    /// National rules first, then each territorial variant.
    pub territories: Vec<TerritoryTerms>,
    /// The first date of the calendar still to come in the territory asked for.
    pub next_date: Option<DateLine>,
    pub sources: Vec<SourceRef>,
}

/// The measures grouped by axis, in the programme's order, their windows as `territory`'s rules
/// date them (a région code; the national rules when `None` or without a variant).
pub fn catalogue(p: &Programme, today: NaiveDate, territory: Option<&str>) -> Vec<AxisBrief> {
    let set = p.rules.rule_set(territory);
    p.axes
        .iter()
        .map(|a| AxisBrief {
            id: a.id.clone(),
            name: a.name.clone(),
            pilot: a.pilot.clone(),
            envelope: a.envelope.map(|c| c.to_short_string()),
            measures: a.measures.iter().map(|m| brief(p, set, m, today)).collect(),
        })
        .collect()
}

/// One measure's sheet; `territory`: the région code whose terms come first in `next_date`
/// (the national rules when `None` or when the région has no variant). `None`: no such measure.
pub fn sheet(
    p: &Programme,
    id: &str,
    today: NaiveDate,
    territory: Option<&str>,
) -> Option<MeasureSheet> {
    let axis = p
        .axes
        .iter()
        .find(|a| a.measures.iter().any(|m| m.id.as_str() == id))?;
    let m = p.measure(id)?;
    let territories: Vec<TerritoryTerms> = std::iter::once(&p.rules.national)
        .chain(&p.rules.variants)
        .map(|set| terms(p, set, id, today))
        .collect();
    let asked = p.rules.rule_set(territory);
    let next_date = territories
        .iter()
        .find(|t| t.territory.code == asked.code)
        .and_then(|t| t.dates.iter().find(|d| !d.past).cloned());
    Some(MeasureSheet {
        brief: brief(p, asked, m, today),
        axis: axis.name.clone(),
        territories,
        next_date,
        sources: m
            .sources
            .iter()
            .map(|s| SourceRef {
                id: s.clone(),
                title: p
                    .source_title(s)
                    .map(str::to_string)
                    // A programme without a `sources` list: the citation is all there is.
                    .unwrap_or_else(|| format!("Document {s} du programme")),
            })
            .collect(),
    })
}

fn terms(p: &Programme, set: &RuleSet, measure: &str, today: NaiveDate) -> TerritoryTerms {
    let territory = Territory {
        code: set.code.clone(),
        name: territory_name(set),
    };
    let excluded = set
        .measures
        .iter()
        .find(|m| m.id == measure)
        .and_then(|m| m.exclusion.as_ref())
        .map(|(_, message)| strip_citations(message));
    let read = set.measure_parameters(measure).unwrap_or_default();
    let value_of = |i: usize| {
        let def = p.rules.params.get(i)?;
        let v = set.param_at(i, today)?;
        Some((def, &v.value))
    };
    let amounts = read
        .amounts
        .iter()
        .filter_map(|&i| value_of(i))
        .filter(|(_, v)| !matches!(v, Value::NonApplicable | Value::Absent))
        .map(|(def, v)| Term {
            name: def.name.clone(),
            title: def.title.clone(),
            value: display(def, v),
        })
        .collect();
    let mut dates: Vec<DateLine> = read
        .conditions
        .iter()
        .filter_map(|&i| value_of(i))
        .filter_map(|(def, v)| match v {
            Value::Date(d) if def.ty == Type::Date => Some(date_line(&def.title, *d, today)),
            _ => None,
        })
        .collect();
    dates.sort_by_key(|d| d.date);
    TerritoryTerms {
        territory,
        // A measure not offered in the territory has no terms there.
        amounts: if excluded.is_some() { vec![] } else { amounts },
        excluded,
        dates,
    }
}

/// A parameter's value as the trace shows it, with its unit.
fn display(def: &ParamDef, v: &Value) -> String {
    match (v, def.unit.as_str()) {
        (Value::Nombre(d), "%") => french_rate(*d),
        (Value::Nombre(_), "habitants" | "communes") => format!("{v}\u{a0}{}", def.unit),
        _ => v.to_string(),
    }
}

/// `[000]`, `[004] §5` at the end of a message: the page names its sources apart.
fn strip_citations(message: &str) -> String {
    let mut m = message.trim_end();
    // A section mark after the citation (`… [004] §5`).
    if let Some(i) = m.rfind(" §") {
        if m[i + " §".len()..].bytes().all(|b| b.is_ascii_digit()) {
            m = m[..i].trim_end();
        }
    }
    // `[ddd]` groups at the end, read as bytes: '[', three digits, ']' are ASCII.
    while let Some(start) = m.rfind('[') {
        let tail = &m.as_bytes()[start..];
        let cited = tail.len() == 5 && tail[1..4].iter().all(u8::is_ascii_digit) && tail[4] == b']';
        if !cited {
            break;
        }
        m = m[..start].trim_end();
    }
    m.to_string()
}

fn brief(p: &Programme, set: &RuleSet, m: &Measure, today: NaiveDate) -> MeasureBrief {
    MeasureBrief {
        id: m.id.as_str().to_string(),
        name: m.name.clone(),
        summary: m.summary.clone(),
        beneficiaries: m.beneficiaries.clone(),
        instruction: instruction(m),
        window: if set
            .measures
            .iter()
            .any(|r| r.id == m.id.as_str() && r.exclusion.is_some())
        {
            format!("Non proposée : {}", territory_name(set))
        } else {
            rules_window(p, set, m.id.as_str(), today)
                .unwrap_or_else(|| window(m.opens, m.closes, today))
        },
    }
}

/// The filing window as the territory's rules date it: the parameters its conditions read
/// named `ouverture<suffix>` open a period that the `cloture<suffix>` one closes (the
/// programme's naming convention, docs/programme-format.md), so waves are told apart. `None`
/// when the conditions read no such parameter (the catalogue's dates are then used).
fn rules_window(p: &Programme, set: &RuleSet, measure: &str, today: NaiveDate) -> Option<String> {
    let read = set.measure_parameters(measure)?;
    let dates: Vec<(&str, NaiveDate)> = read
        .conditions
        .iter()
        .filter_map(|&i| match set.param_at(i, today).map(|v| &v.value) {
            Some(Value::Date(d)) => Some((p.rules.params.get(i)?.name.as_str(), *d)),
            _ => None,
        })
        .collect();
    let mut periods: Vec<(NaiveDate, Option<NaiveDate>)> = dates
        .iter()
        .filter_map(|(name, open)| {
            let suffix = name.strip_prefix("ouverture")?;
            let close = dates
                .iter()
                .find(|(n, _)| n.strip_prefix("cloture") == Some(suffix))
                .map(|(_, d)| *d);
            Some((*open, close))
        })
        .collect();
    periods.sort();
    let d = |d: NaiveDate| d.format("%d/%m/%Y").to_string();
    let open_now = periods
        .iter()
        .find(|(o, c)| *o <= today && c.is_none_or(|c| today <= c));
    if let Some((o, c)) = open_now {
        return Some(match c {
            Some(c) => format!("Ouvert jusqu’au {} ({})", d(*c), relative(*c, today)),
            None => format!("Ouvert depuis le {}, sans date limite", d(*o)),
        });
    }
    let next = periods.iter().find(|(o, _)| *o > today);
    let last_close = periods
        .iter()
        .filter_map(|(_, c)| *c)
        .filter(|c| *c < today)
        .max();
    match (next, last_close) {
        (Some((o, _)), Some(_)) => Some(format!(
            "Fermé entre deux vagues : prochaine ouverture le {} ({})",
            d(*o),
            relative(*o, today)
        )),
        (Some((o, _)), None) => Some(format!("Ouvre le {} ({})", d(*o), relative(*o, today))),
        (None, Some(c)) => Some(format!("Clos depuis le {} ({})", d(c), relative(c, today))),
        (None, None) => None,
    }
}

/// Who instructs a dossier of this measure, in words.
pub fn instruction(m: &Measure) -> String {
    match m.instruction.as_str() {
        "departement" => "La préfecture du département où le projet se déroule".into(),
        "region" => "La préfecture de région".into(),
        _ => match &m.instructing_service {
            Some(s) => format!("Au niveau national, {s}"),
            None => "Au niveau national".into(),
        },
    }
}

/// Where the filing window stands on `today`, in words.
pub fn window(opens: Option<NaiveDate>, closes: Option<NaiveDate>, today: NaiveDate) -> String {
    let d = |d: NaiveDate| d.format("%d/%m/%Y").to_string();
    match (opens, closes) {
        (Some(o), _) if today < o => format!("Ouvre le {} ({})", d(o), relative(o, today)),
        (_, Some(c)) if c < today => format!("Clos depuis le {} ({})", d(c), relative(c, today)),
        (_, Some(c)) => format!("Ouvert jusqu’au {} ({})", d(c), relative(c, today)),
        (Some(o), None) => format!("Ouvert depuis le {}, sans date limite nationale", d(o)),
        (None, None) => "Le programme ne fixe pas de période de dépôt".into(),
    }
}

fn date_line(title: &str, date: NaiveDate, today: NaiveDate) -> DateLine {
    DateLine {
        title: title.to_string(),
        date,
        display: date.format("%d/%m/%Y").to_string(),
        relative: relative(date, today),
        past: date < today,
    }
}

/// `dans 12 jours`, `aujourd’hui`, `il y a 3 mois`: a date said from `today`.
pub fn relative(date: NaiveDate, today: NaiveDate) -> String {
    let days = (date - today).num_days();
    let n = days.unsigned_abs();
    let span = match n {
        0 => return "aujourd’hui".into(),
        1 if days > 0 => return "demain".into(),
        1 => return "hier".into(),
        2..=59 => format!("{n}\u{a0}jours"),
        60..=729 => format!("{}\u{a0}mois", n / 30),
        _ => format!("{}\u{a0}ans", n / 365),
    };
    if days > 0 {
        format!("dans {span}")
    } else {
        format!("il y a {span}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn itn7() -> Programme {
        Programme::load(&crate::programme::itn7_files()).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn dates_are_said_from_today() {
        let today = day(2021, 6, 1);
        assert_eq!(relative(today, today), "aujourd’hui");
        assert_eq!(relative(day(2021, 6, 2), today), "demain");
        assert_eq!(relative(day(2021, 5, 31), today), "hier");
        assert_eq!(relative(day(2021, 7, 1), today), "dans 30\u{a0}jours");
        assert_eq!(relative(day(2021, 1, 25), today), "il y a 4\u{a0}mois");
        assert_eq!(relative(day(2023, 6, 1), today), "dans 2\u{a0}ans");
        assert_eq!(
            window(Some(day(2021, 1, 25)), Some(day(2021, 10, 31)), today),
            "Ouvert jusqu’au 31/10/2021 (dans 5\u{a0}mois)"
        );
        assert!(
            window(Some(day(2021, 1, 25)), Some(day(2021, 5, 28)), today)
                .starts_with("Clos depuis le 28/05/2021")
        );
    }

    #[test]
    fn citations_leave_the_messages() {
        assert_eq!(
            strip_citations("L’appel à projets ne prend pas en compte ces projets. [004] §5"),
            "L’appel à projets ne prend pas en compte ces projets."
        );
        assert_eq!(strip_citations("Exclu. [001][003]"), "Exclu.");
        assert_eq!(strip_citations("Sans citation."), "Sans citation.");
    }

    #[test]
    fn a_sheet_gives_each_territory_its_terms() {
        let p = itn7();
        let today = day(2021, 6, 1);
        let s = sheet(&p, "axe3.v1.relation-usager", today, Some("11")).unwrap();
        assert_eq!(s.territories.len(), 4);
        let national = &s.territories[0];
        assert!(national.territory.code.is_none());
        assert!(national
            .amounts
            .iter()
            .any(|t| t.name == "taux_axe3" && t.value == "100\u{a0}%"));
        let idf = &s.territories[1];
        assert_eq!(idf.territory.name, "Île-de-France");
        assert!(idf
            .amounts
            .iter()
            .any(|t| t.name == "taux_exceptionnel_relation_usager_idf" && t.value == "80\u{a0}%"));
        assert!(idf
            .amounts
            .iter()
            .any(|t| t.name == "seuil_taux_plein_idf" && t.value.contains("habitants")));
        // Île-de-France's next date is its own end of projects, not the national one.
        let next = s.next_date.unwrap();
        assert_eq!(next.date, day(2022, 10, 31));
        assert_eq!(s.sources[0].id, "[000]");
        assert!(s.sources[0].title.contains("Île-de-France"));
        // PACA does not offer Démat.ADS.
        let d = sheet(&p, "axe3.v1.dematads", today, None).unwrap();
        let paca = d
            .territories
            .iter()
            .find(|t| t.territory.code.as_deref() == Some("93"))
            .unwrap();
        assert!(paca.excluded.as_deref().unwrap().ends_with("urbanisme."));
        assert!(paca.amounts.is_empty());
        assert!(sheet(&p, "axe9", today, None).is_none());
    }

    #[test]
    fn the_catalogue_keeps_the_axes_order() {
        let p = itn7();
        let c = catalogue(&p, day(2021, 6, 1), None);
        let paca = catalogue(&p, day(2021, 6, 1), Some("93"));
        assert!(
            paca[2].measures[1]
                .window
                .starts_with("Ouvert jusqu’au 15/10/2021"),
            "{}",
            paca[2].measures[1].window
        );
        assert_eq!(
            paca[2].measures[3].window,
            "Non proposée : Provence-Alpes-Côte d’Azur"
        );
        assert_eq!(c.len(), p.axes.len());
        assert_eq!(c[0].measures[0].id, "axe1");
        let fc = c
            .iter()
            .flat_map(|a| &a.measures)
            .find(|m| m.id == "axe2.franceconnect")
            .unwrap();
        assert!(
            fc.window.starts_with("Ouvert jusqu’au 30/09/2022"),
            "{}",
            fc.window
        );
        assert_eq!(fc.instruction, "Au niveau national, DINUM");
        // Between the first two waves of axe 2.
        let demat = c
            .iter()
            .flat_map(|a| &a.measures)
            .find(|m| m.id == "axe2.demat")
            .unwrap();
        assert_eq!(
            demat.window,
            "Fermé entre deux vagues : prochaine ouverture le 01/07/2021 (dans 30\u{a0}jours)"
        );
        let ads = c
            .iter()
            .flat_map(|a| &a.measures)
            .find(|m| m.id == "axe3.v1.dematads")
            .unwrap();
        assert!(
            ads.window.starts_with("Ouvert jusqu’au 31/10/2021"),
            "{}",
            ads.window
        );
        // PACA's call closes; the national desk does not.
        let s = sheet(&p, "axe3.v1.formation", day(2021, 6, 1), Some("93")).unwrap();
        assert!(
            s.brief.window.starts_with("Ouvert jusqu’au 15/10/2021"),
            "{}",
            s.brief.window
        );
        let s = sheet(&p, "axe3.v1.formation", day(2021, 6, 1), None).unwrap();
        assert_eq!(
            s.brief.window,
            "Ouvert depuis le 25/01/2021, sans date limite"
        );
    }
}
