//! Formulas as written in programme files, before names are resolved.
//!
//! A formula is either a short infix expression in a YAML string
//! (`population <= seuil_petite_collectivite`, `assiette * taux`, `date_depot >= 2021-01-25`)
//! or a YAML mapping naming one mechanism, with Publicodes' French names: `variations`,
//! `grille`, `le minimum de`, `le maximum de`, `somme`, `produit`, `toutes ces conditions`,
//! `une de ces conditions`, and the modifiers `valeur` + `plafond` / `plancher` / `arrondi` /
//! `applicable si` / `non applicable si`.

use crate::value::{parse_euros, parse_number, Value};
use crate::yaml::{Mapping, Yaml};
use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "×",
            BinOp::Div => "/",
            BinOp::Lt => "<",
            BinOp::Le => "≤",
            BinOp::Gt => ">",
            BinOp::Ge => "≥",
            BinOp::Eq => "=",
            BinOp::Ne => "≠",
            BinOp::And => "et",
            BinOp::Or => "ou",
        }
    }
}

/// How a bound of a `grille` tranche treats its own value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: Value,
    pub inclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tranche {
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
    pub value: Expr,
}

/// Explicit rounding of an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Down to the cent: the State never pays a fraction of a cent it did not owe.
    CentDown,
    EuroDown,
    EuroNearest,
}

impl Rounding {
    pub fn parse(s: &str) -> Option<Rounding> {
        Some(match s.trim() {
            "centime inférieur" | "centime inferieur" => Rounding::CentDown,
            "euro inférieur" | "euro inferieur" => Rounding::EuroDown,
            "euro le plus proche" => Rounding::EuroNearest,
            _ => return None,
        })
    }
    pub fn label(self) -> &'static str {
        match self {
            Rounding::CentDown => "arrondi au centime inférieur",
            Rounding::EuroDown => "arrondi à l’euro inférieur",
            Rounding::EuroNearest => "arrondi à l’euro le plus proche",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(Value),
    Ref(String),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    In(Box<Expr>, Vec<Value>),
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Min(Vec<Expr>),
    Max(Vec<Expr>),
    Sum(Vec<Expr>),
    Product(Vec<Expr>),
    Variations(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    Grid(Box<Expr>, Vec<Tranche>),
    Modified {
        value: Box<Expr>,
        applicable: Option<Box<Expr>>,
        not_applicable: Option<Box<Expr>>,
        cap: Option<Box<Expr>>,
        floor: Option<Box<Expr>>,
        rounding: Option<Rounding>,
    },
}

/// A parse error, with the text that caused it (used to locate it in the file).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub near: String,
}

fn err<T>(message: impl Into<String>, near: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
        near: near.into(),
    })
}

impl Expr {
    /// Every name the formula refers to, in order of appearance.
    pub fn refs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Const(_) => {}
            Expr::Ref(n) => out.push(n),
            Expr::Bin(_, a, b) => {
                a.refs(out);
                b.refs(out);
            }
            Expr::Neg(a) | Expr::In(a, _) => a.refs(out),
            Expr::All(v)
            | Expr::Any(v)
            | Expr::Min(v)
            | Expr::Max(v)
            | Expr::Sum(v)
            | Expr::Product(v) => v.iter().for_each(|e| e.refs(out)),
            Expr::Variations(branches, otherwise) => {
                for (c, v) in branches {
                    c.refs(out);
                    v.refs(out);
                }
                if let Some(o) = otherwise {
                    o.refs(out);
                }
            }
            Expr::Grid(base, tranches) => {
                base.refs(out);
                tranches.iter().for_each(|t| t.value.refs(out));
            }
            Expr::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                ..
            } => {
                value.refs(out);
                for e in [applicable, not_applicable, cap, floor]
                    .into_iter()
                    .flatten()
                {
                    e.refs(out);
                }
            }
        }
    }

    /// Reads a formula from YAML.
    pub fn from_yaml(y: &Yaml) -> Result<Expr, ParseError> {
        from_yaml_in(y, 0)
    }
}

/// Reads a formula from YAML under `level` mechanisms: the whole formula nests at most
/// [`MAX_NESTING`] deep.
fn from_yaml_in(y: &Yaml, level: usize) -> Result<Expr, ParseError> {
    if level >= MAX_NESTING {
        return err(too_deep(), "");
    }
    match y {
        Yaml::String(s) => {
            let (e, depth) = parse_infix_depth(s)?;
            if level + depth > MAX_NESTING {
                return err(too_deep(), head(s));
            }
            Ok(e)
        }
        Yaml::Number(n) => {
            let s = n.to_string();
            parse_number(&s)
                .map(|d| Expr::Const(Value::Nombre(d)))
                .or_else(|m| err(m, s))
        }
        Yaml::Bool(b) => Ok(Expr::Const(Value::Booleen(*b))),
        Yaml::Mapping(m) => mechanism(m, level + 1),
        Yaml::Null => err("formule vide", ""),
        Yaml::Sequence(_) => err(
            "une liste n’est pas une formule : utilisez « somme », « le minimum de »… ",
            "",
        ),
    }
}

fn key_str(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => s.clone(),
        other => other.to_text(),
    }
}

fn list(y: &Yaml, what: &str, level: usize) -> Result<Vec<Expr>, ParseError> {
    match y {
        Yaml::Sequence(items) if !items.is_empty() => {
            items.iter().map(|y| from_yaml_in(y, level)).collect()
        }
        _ => err(
            format!("« {what} » attend une liste non vide de formules"),
            what,
        ),
    }
}

const MECHANISMS: &str = "variations, grille, le minimum de, le maximum de, somme, produit, \
toutes ces conditions, une de ces conditions, ou valeur avec plafond, plancher, arrondi, \
applicable si, non applicable si";

fn mechanism(m: &Mapping, level: usize) -> Result<Expr, ParseError> {
    let keys: Vec<String> = m.keys().map(key_str).collect();
    if keys.len() == 1 {
        let k = keys[0].as_str();
        let v = m.iter().next().map_or(&Yaml::Null, |(_, v)| v);
        return match k {
            "le minimum de" => Ok(Expr::Min(list(v, k, level)?)),
            "le maximum de" => Ok(Expr::Max(list(v, k, level)?)),
            "somme" => Ok(Expr::Sum(list(v, k, level)?)),
            "produit" => Ok(Expr::Product(list(v, k, level)?)),
            "toutes ces conditions" => Ok(Expr::All(list(v, k, level)?)),
            "une de ces conditions" => Ok(Expr::Any(list(v, k, level)?)),
            "variations" => variations(v, level),
            "grille" => grid(v, level),
            "valeur" => from_yaml_in(v, level),
            other => err(
                format!("mécanisme inconnu : « {other} » (mécanismes : {MECHANISMS})"),
                other,
            ),
        };
    }
    let get = |name: &str| m.get(name);
    for k in &keys {
        if ![
            "valeur",
            "plafond",
            "plancher",
            "arrondi",
            "applicable si",
            "non applicable si",
        ]
        .contains(&k.as_str())
        {
            return err(
                format!("clé inconnue dans une formule : « {k} » (mécanismes : {MECHANISMS})"),
                k.as_str(),
            );
        }
    }
    let Some(value) = get("valeur") else {
        return err(
            "« plafond », « plancher », « arrondi » et « applicable si » s’appliquent à une « valeur »",
            keys.first().cloned().unwrap_or_default(),
        );
    };
    let opt = |name: &str| -> Result<Option<Box<Expr>>, ParseError> {
        get(name)
            .map(|y| from_yaml_in(y, level).map(Box::new))
            .transpose()
    };
    let rounding = match get("arrondi") {
        None => None,
        Some(Yaml::String(s)) => Some(Rounding::parse(s).ok_or_else(|| ParseError {
            message: format!(
                "arrondi inconnu : « {s} » (centime inférieur, euro inférieur, euro le plus proche)"
            ),
            near: s.clone(),
        })?),
        Some(_) => {
            return err(
                "« arrondi » attend un texte (centime inférieur…)",
                "arrondi",
            )
        }
    };
    Ok(Expr::Modified {
        value: Box::new(from_yaml_in(value, level)?),
        applicable: opt("applicable si")?,
        not_applicable: opt("non applicable si")?,
        cap: opt("plafond")?,
        floor: opt("plancher")?,
        rounding,
    })
}

fn variations(v: &Yaml, level: usize) -> Result<Expr, ParseError> {
    let Yaml::Sequence(items) = v else {
        return err(
            "« variations » attend une liste de { si, alors } terminée par { sinon }",
            "variations",
        );
    };
    let mut branches = Vec::new();
    let mut otherwise = None;
    for (i, item) in items.iter().enumerate() {
        let Yaml::Mapping(m) = item else {
            return err(
                "chaque variation est { si: …, alors: … } ou { sinon: … }",
                "variations",
            );
        };
        let (si, alors, sinon) = (m.get("si"), m.get("alors"), m.get("sinon"));
        match (si, alors, sinon) {
            (Some(c), Some(v), None) if m.len() == 2 => {
                if otherwise.is_some() {
                    return err("« sinon » doit être la dernière variation", "sinon");
                }
                branches.push((from_yaml_in(c, level)?, from_yaml_in(v, level)?));
            }
            (None, None, Some(v)) if m.len() == 1 && i == items.len() - 1 => {
                otherwise = Some(Box::new(from_yaml_in(v, level)?));
            }
            (None, None, Some(_)) => {
                return err("« sinon » doit être la dernière variation", "sinon")
            }
            _ => {
                return err(
                    "chaque variation est { si: …, alors: … } ou, en dernier, { sinon: … }",
                    "variations",
                )
            }
        }
    }
    if branches.is_empty() {
        return err("« variations » sans aucune branche « si »", "variations");
    }
    Ok(Expr::Variations(branches, otherwise))
}

/// Bounds of a tranche: `à partir de` (inclusive) or `au-delà de` (exclusive) below,
/// `jusqu'à` (inclusive) or `en dessous de` (exclusive) above.
fn grid(v: &Yaml, level: usize) -> Result<Expr, ParseError> {
    let Yaml::Mapping(m) = v else {
        return err(
            "« grille » attend { assiette: …, tranches: [...] }",
            "grille",
        );
    };
    let base = m.get("assiette").ok_or_else(|| ParseError {
        message: "« grille » sans « assiette »".into(),
        near: "grille".into(),
    })?;
    let Some(Yaml::Sequence(items)) = m.get("tranches") else {
        return err("« grille » sans liste « tranches »", "grille");
    };
    if m.len() != 2 {
        return err(
            "« grille » n’accepte que « assiette » et « tranches »",
            "grille",
        );
    }
    let mut tranches = Vec::new();
    for item in items {
        let Yaml::Mapping(t) = item else {
            return err(
                "chaque tranche est une table { jusqu'à: …, valeur: … }",
                "tranches",
            );
        };
        let mut lower = None;
        let mut upper = None;
        let mut value = None;
        for (k, v) in t.iter() {
            let k = key_str(k);
            let bound = |inclusive: bool| -> Result<Option<Bound>, ParseError> {
                let lit = match v {
                    Yaml::String(s) => literal(s)?,
                    Yaml::Number(n) => Value::Nombre(
                        parse_number(&n.to_string()).or_else(|m| err(m, n.to_string()))?,
                    ),
                    _ => return err("une borne de tranche est une constante", k.as_str()),
                };
                Ok(Some(Bound {
                    value: lit,
                    inclusive,
                }))
            };
            match k.as_str() {
                "à partir de" if lower.is_none() => lower = bound(true)?,
                "au-delà de" if lower.is_none() => lower = bound(false)?,
                "jusqu'à" | "jusqu’à" if upper.is_none() => upper = bound(true)?,
                "en dessous de" if upper.is_none() => upper = bound(false)?,
                "valeur" => value = Some(from_yaml_in(v, level)?),
                other => {
                    return err(
                        format!(
                            "clé de tranche inconnue ou en double : « {other} » (à partir de, au-delà de, jusqu'à, en dessous de, valeur)"
                        ),
                        other,
                    )
                }
            }
        }
        let Some(value) = value else {
            return err("tranche sans « valeur »", "tranches");
        };
        tranches.push(Tranche {
            lower,
            upper,
            value,
        });
    }
    if tranches.is_empty() {
        return err("« grille » sans tranche", "tranches");
    }
    Ok(Expr::Grid(Box::new(from_yaml_in(base, level)?), tranches))
}

/// A constant written alone: number, `50 %`, `5000 €`, date, `oui`/`non`, `'texte'`.
fn literal(s: &str) -> Result<Value, ParseError> {
    match parse_infix(s)? {
        Expr::Const(v) => Ok(v),
        Expr::Neg(inner) => match *inner {
            Expr::Const(Value::Nombre(d)) => Ok(Value::Nombre(-d)),
            _ => err("constante attendue", s),
        },
        _ => err("constante attendue", s),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Percent,
    Euro,
    Date(NaiveDate),
    Ident(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<Tok>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
                i += 1;
            }
            // A date: 4 digits, '-', 2 digits, '-', 2 digits.
            if i - start == 4
                && i + 5 < chars.len() + 1
                && chars.get(i) == Some(&'-')
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
                && chars.get(i + 2).is_some_and(|c| c.is_ascii_digit())
                && chars.get(i + 3) == Some(&'-')
            {
                let end = (i + 6).min(chars.len());
                let text: String = chars[start..end].iter().collect();
                let d = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| ParseError {
                    message: format!("date invalide : « {text} »"),
                    near: text.clone(),
                })?;
                out.push(Tok::Date(d));
                i = end;
                continue;
            }
            if i < chars.len()
                && chars[i] == '.'
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == '\'' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return err("texte non terminé (guillemet manquant)", src);
            }
            out.push(Tok::Str(chars[start..i].iter().collect()));
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "!=" => Some("!="),
            _ => None,
        };
        if let Some(op) = op2 {
            out.push(Tok::Op(op));
            i += 2;
            continue;
        }
        let tok = match c {
            '%' => Tok::Percent,
            '€' => Tok::Euro,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' | '×' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '=' => Tok::Op("="),
            '≤' => Tok::Op("<="),
            '≥' => Tok::Op(">="),
            '≠' => Tok::Op("!="),
            other => {
                return err(
                    format!("caractère inattendu : « {other} »"),
                    other.to_string(),
                )
            }
        };
        out.push(tok);
        i += 1;
    }
    Ok(out)
}

/// How deeply a formula may nest: parentheses, operators, minus signs and mechanisms, counted
/// together. Formulas are checked, evaluated and even dropped by walking them recursively: a
/// formula nested thousands deep would overflow the stack and abort the process, so it is
/// refused at load with its position. Real formulas nest fewer than ten levels.
pub const MAX_NESTING: usize = 64;

/// The message of a formula nested deeper than [`MAX_NESTING`].
fn too_deep() -> String {
    format!(
        "formule trop imbriquée : plus de {MAX_NESTING} niveaux de parenthèses, d’opérateurs ou de mécanismes"
    )
}

/// The beginning of a formula, to locate an error in the file without quoting it whole.
fn head(src: &str) -> String {
    src.trim().chars().take(24).collect()
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'a str,
    /// Nested calls in progress (parentheses and minus signs open).
    open: usize,
}

/// A parsed piece of formula and its depth (a leaf: 1).
type Parsed = Result<(Expr, usize), ParseError>;

/// Parses an infix formula.
pub fn parse_infix(src: &str) -> Result<Expr, ParseError> {
    parse_infix_depth(src).map(|(e, _)| e)
}

/// Parses an infix formula, and says how deep it nests (at most [`MAX_NESTING`]).
pub(crate) fn parse_infix_depth(src: &str) -> Parsed {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return err("formule vide", src);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        src,
        open: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return err(
            format!(
                "formule mal formée : « {src} » (reste inattendu après la position {})",
                p.pos + 1
            ),
            src,
        );
    }
    Ok(e)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == w)
    }
    /// A node over parts of the given depths, refused past [`MAX_NESTING`].
    fn node(&self, e: Expr, depth: usize) -> Parsed {
        if depth > MAX_NESTING {
            return err(too_deep(), head(self.src));
        }
        Ok((e, depth))
    }
    fn bin(&self, op: BinOp, (l, dl): (Expr, usize), (r, dr): (Expr, usize)) -> Parsed {
        self.node(Expr::Bin(op, Box::new(l), Box::new(r)), 1 + dl.max(dr))
    }
    fn or(&mut self) -> Parsed {
        let mut left = self.and()?;
        while self.is_word("ou") {
            self.pos += 1;
            let right = self.and()?;
            left = self.bin(BinOp::Or, left, right)?;
        }
        Ok(left)
    }
    fn and(&mut self) -> Parsed {
        let mut left = self.cmp()?;
        while self.is_word("et") {
            self.pos += 1;
            let right = self.cmp()?;
            left = self.bin(BinOp::And, left, right)?;
        }
        Ok(left)
    }
    fn cmp(&mut self) -> Parsed {
        let left = self.add()?;
        if self.is_word("dans") {
            self.pos += 1;
            if self.peek() != Some(&Tok::LBracket) {
                return err(
                    "« dans » attend une liste entre crochets : dans ['commune', 'epci']",
                    self.src,
                );
            }
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                match self.peek().cloned() {
                    Some(Tok::RBracket) => {
                        self.pos += 1;
                        break;
                    }
                    Some(Tok::Comma) => self.pos += 1,
                    Some(_) => {
                        let (e, _) = self.add()?;
                        match e {
                            Expr::Const(v) => items.push(v),
                            _ => {
                                return err(
                                    "la liste de « dans » ne contient que des constantes",
                                    self.src,
                                )
                            }
                        }
                    }
                    None => return err("crochet fermant manquant", self.src),
                }
            }
            let (l, d) = left;
            return self.node(Expr::In(Box::new(l), items), d + 1);
        }
        let op = match self.peek() {
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            Some(Tok::Op("=")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.add()?;
        self.bin(op, left, right)
    }
    fn add(&mut self) -> Parsed {
        let mut left = self.mul()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.mul()?;
            left = self.bin(op, left, right)?;
        }
    }
    fn mul(&mut self) -> Parsed {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = self.bin(op, left, right)?;
        }
    }
    /// Enters a parenthesis or a minus sign: the parser's own recursion is bounded too (a
    /// parenthesis adds no node, yet a call).
    fn enter(&mut self) -> Result<(), ParseError> {
        self.open += 1;
        if self.open > MAX_NESTING {
            return err(too_deep(), head(self.src));
        }
        Ok(())
    }
    fn unary(&mut self) -> Parsed {
        if self.peek() == Some(&Tok::Op("-")) {
            self.pos += 1;
            self.enter()?;
            let (e, d) = self.unary()?;
            self.open -= 1;
            return self.node(Expr::Neg(Box::new(e)), d + 1);
        }
        self.primary()
    }
    fn primary(&mut self) -> Parsed {
        let Some(tok) = self.peek().cloned() else {
            return err(format!("formule incomplète : « {} »", self.src), self.src);
        };
        self.pos += 1;
        let leaf = match tok {
            Tok::Num(n) => match self.peek() {
                Some(Tok::Percent) => {
                    self.pos += 1;
                    let d = parse_number(&format!("{n}%")).or_else(|m| err(m, n.clone()))?;
                    Expr::Const(Value::Nombre(d))
                }
                Some(Tok::Euro) => {
                    self.pos += 1;
                    let c = parse_euros(&n).or_else(|m| err(m, n.clone()))?;
                    Expr::Const(Value::Montant(c))
                }
                _ => {
                    let d = parse_number(&n).or_else(|m| err(m, n.clone()))?;
                    Expr::Const(Value::Nombre(d))
                }
            },
            Tok::Date(d) => Expr::Const(Value::Date(d)),
            Tok::Str(s) => Expr::Const(Value::text(&s)),
            Tok::Ident(w) => match w.as_str() {
                "oui" | "vrai" => Expr::Const(Value::Booleen(true)),
                "non" | "faux" => Expr::Const(Value::Booleen(false)),
                "non_applicable" => Expr::Const(Value::NonApplicable),
                "et" | "ou" | "dans" => {
                    return err(format!("« {w} » inattendu dans « {} »", self.src), w)
                }
                _ => Expr::Ref(w),
            },
            Tok::LParen => {
                self.enter()?;
                let e = self.or()?;
                self.open -= 1;
                if self.peek() != Some(&Tok::RParen) {
                    return err(
                        format!("parenthèse fermante manquante dans « {} »", self.src),
                        self.src,
                    );
                }
                self.pos += 1;
                return Ok(e);
            }
            other => {
                return err(
                    format!(
                        "formule mal formée : « {} » ({other:?} inattendu)",
                        self.src
                    ),
                    self.src,
                )
            }
        };
        Ok((leaf, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn infix_precedence_and_literals() {
        let e = parse_infix("assiette * taux + 400 € * 2").unwrap();
        let Expr::Bin(BinOp::Add, l, r) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(*l, Expr::Bin(BinOp::Mul, _, _)));
        assert!(matches!(*r, Expr::Bin(BinOp::Mul, _, _)));
        assert_eq!(
            parse_infix("50 %").unwrap(),
            Expr::Const(Value::Nombre(Decimal::new(5, 1)))
        );
        assert_eq!(
            parse_infix("2022-10-31").unwrap(),
            Expr::Const(Value::Date(NaiveDate::from_ymd_opt(2022, 10, 31).unwrap()))
        );
        assert!(matches!(
            parse_infix("type_demandeur dans ['commune', 'epci'] et population <= 15000").unwrap(),
            Expr::Bin(BinOp::And, _, _)
        ));
        assert!(parse_infix("population <=").is_err());
        assert!(parse_infix("(a + b").is_err());
        assert!(parse_infix("a $ b").is_err());
    }

    #[test]
    fn mechanisms_from_yaml() {
        let y: Yaml = crate::yaml::from_str(
            "grille:\n  assiette: population\n  tranches:\n    - { jusqu'à: 15000, valeur: 100 % }\n    - { au-delà de: 15000, valeur: 50 % }\n",
        )
        .unwrap();
        let Expr::Grid(_, t) = Expr::from_yaml(&y).unwrap() else {
            panic!()
        };
        assert_eq!(t.len(), 2);
        assert!(t[0].upper.as_ref().unwrap().inclusive);
        assert!(!t[1].lower.as_ref().unwrap().inclusive);
        let bad: Yaml = crate::yaml::from_str("plafonds: 3").unwrap();
        assert!(Expr::from_yaml(&bad).is_err());
    }
}

impl Expr {
    /// The formula as a line of French for explanations: `assiette × taux, plafonné à
    /// plafond_axe3`, `si population ≤ seuil alors taux_axe3, sinon taux_reduit_idf`.
    pub fn render(&self) -> String {
        fn list(v: &[Expr]) -> String {
            v.iter().map(Expr::render).collect::<Vec<_>>().join(" ; ")
        }
        fn constant(v: &Value) -> String {
            match v {
                Value::Texte(t) => format!("« {t} »"),
                other => other.to_string(),
            }
        }
        fn prec(e: &Expr) -> u8 {
            match e {
                Expr::Bin(BinOp::Or, _, _) => 1,
                Expr::Bin(BinOp::And, _, _) => 2,
                Expr::Bin(
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne,
                    _,
                    _,
                )
                | Expr::In(_, _) => 3,
                Expr::Bin(BinOp::Add | BinOp::Sub, _, _) => 4,
                Expr::Bin(BinOp::Mul | BinOp::Div, _, _) => 5,
                _ => 6,
            }
        }
        fn child(e: &Expr, min: u8) -> String {
            if prec(e) < min {
                format!("({})", e.render())
            } else {
                e.render()
            }
        }
        match self {
            Expr::Const(v) => constant(v),
            Expr::Ref(n) => n.clone(),
            Expr::Bin(op, a, b) => {
                let p = prec(self);
                format!("{} {} {}", child(a, p), op.symbol(), child(b, p + 1))
            }
            Expr::Neg(a) => format!("-{}", child(a, 6)),
            Expr::In(a, items) => format!(
                "{} parmi {}",
                child(a, 4),
                items.iter().map(constant).collect::<Vec<_>>().join(", ")
            ),
            Expr::All(v) => format!("toutes ces conditions : ({})", list(v)),
            Expr::Any(v) => format!("une de ces conditions : ({})", list(v)),
            Expr::Min(v) => format!("le minimum de ({})", list(v)),
            Expr::Max(v) => format!("le maximum de ({})", list(v)),
            Expr::Sum(v) => format!("la somme de ({})", list(v)),
            Expr::Product(v) => format!("le produit de ({})", list(v)),
            Expr::Variations(branches, otherwise) => {
                let mut parts: Vec<String> = branches
                    .iter()
                    .map(|(c, v)| format!("si {} alors {}", c.render(), v.render()))
                    .collect();
                if let Some(o) = otherwise {
                    parts.push(format!("sinon {}", o.render()));
                }
                parts.join(", ")
            }
            Expr::Grid(base, tranches) => {
                let parts: Vec<String> = tranches
                    .iter()
                    .map(|t| {
                        let mut b = Vec::new();
                        if let Some(l) = &t.lower {
                            b.push(format!(
                                "{} {}",
                                if l.inclusive {
                                    "à partir de"
                                } else {
                                    "au-delà de"
                                },
                                constant(&l.value)
                            ));
                        }
                        if let Some(u) = &t.upper {
                            b.push(format!(
                                "{} {}",
                                if u.inclusive {
                                    "jusqu’à"
                                } else {
                                    "en dessous de"
                                },
                                constant(&u.value)
                            ));
                        }
                        format!("{} → {}", b.join(" et "), t.value.render())
                    })
                    .collect();
                format!("selon {} : {}", base.render(), parts.join(" ; "))
            }
            Expr::Modified {
                value,
                applicable,
                not_applicable,
                cap,
                floor,
                rounding,
            } => {
                let mut s = value.render();
                if let Some(c) = cap {
                    s.push_str(&format!(", plafonné à {}", c.render()));
                }
                if let Some(f) = floor {
                    s.push_str(&format!(", au moins {}", f.render()));
                }
                if let Some(r) = rounding {
                    s.push_str(&format!(", {}", r.label()));
                }
                if let Some(a) = applicable {
                    s.push_str(&format!(", si {}", a.render()));
                }
                if let Some(n) = not_applicable {
                    s.push_str(&format!(", sauf si {}", n.render()));
                }
                s
            }
        }
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn formulas_read_as_french() {
        let y: Yaml = crate::yaml::from_str(
            "valeur:\n  le minimum de:\n    - assiette * taux\n    - forfait_expert\nplafond: plafond_axe3\n",
        )
        .unwrap();
        assert_eq!(
            Expr::from_yaml(&y).unwrap().render(),
            "le minimum de (assiette × taux ; forfait_expert), plafonné à plafond_axe3"
        );
        let y: Yaml = crate::yaml::from_str(
            "variations:\n  - si: population <= seuil\n    alors: taux_axe3\n  - sinon: 50 %\n",
        )
        .unwrap();
        assert_eq!(
            Expr::from_yaml(&y).unwrap().render(),
            "si population ≤ seuil alors taux_axe3, sinon 0,5"
        );
        assert_eq!(
            parse_infix("(a + b) * c et d = 'x'").unwrap().render(),
            "(a + b) × c et d = « x »"
        );
    }
}
