//! Reading a programme folder from disk (`programmes/itn7/`): the only place that does I/O for
//! programme definitions; the engine itself (`guichet-programme`) receives the files' text.

use crate::error::{AppError, AppResult};
use guichet_programme::{Diagnostic, Diagnostics, Programme, SourceFile, PROGRAMME_FILES};
use std::path::{Path, PathBuf};

/// The folder a path names: the folder itself, or the folder of a `programme.yaml` given.
pub fn folder(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    }
}

fn read(dir: &Path, name: &str) -> Result<SourceFile, Diagnostic> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .map(|text| SourceFile::new(path.display().to_string(), text))
        .map_err(|e| Diagnostic {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            message: format!("fichier illisible : {e}"),
        })
}

/// The programme files of a folder (each named by its path, for diagnostics).
pub fn read_files(path: &Path) -> Result<Vec<SourceFile>, Diagnostics> {
    let dir = folder(path);
    if !dir.is_dir() {
        return Err(Diagnostics(vec![Diagnostic {
            file: dir.display().to_string(),
            line: 1,
            column: 1,
            message: "dossier de programme introuvable".into(),
        }]));
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for name in PROGRAMME_FILES {
        match read(&dir, name) {
            Ok(f) => files.push(f),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(errors))
    }
}

/// The test case files of a programme folder (`tests/*.yaml`), in name order.
pub fn read_tests(path: &Path) -> Result<Vec<SourceFile>, Diagnostics> {
    let dir = folder(path).join("tests");
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: dir.display().to_string(),
            line: 1,
            column: 1,
            message: format!("dossier de tests illisible : {e}"),
        }])
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match std::fs::read_to_string(&p) {
            Ok(text) => files.push(SourceFile::new(p.display().to_string(), text)),
            Err(e) => errors.push(Diagnostic {
                file: p.display().to_string(),
                line: 1,
                column: 1,
                message: format!("fichier illisible : {e}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Loads and checks a programme folder.
pub fn load(path: &Path) -> Result<Programme, Diagnostics> {
    Programme::load(&read_files(path)?)
}

/// The ITN7 programme files shipped with Guichet, compiled in so that the binary is
/// self-sufficient; a deployment may point `GUICHET_PROGRAMME` at another programme folder.
/// (The engine, `guichet-programme`, knows no programme of its own.)
pub fn itn7_files() -> Vec<SourceFile> {
    vec![
        SourceFile::new(
            "programme.yaml",
            include_str!("../../../programmes/itn7/programme.yaml"),
        ),
        SourceFile::new(
            "parametres.yaml",
            include_str!("../../../programmes/itn7/parametres.yaml"),
        ),
        SourceFile::new(
            "regles.yaml",
            include_str!("../../../programmes/itn7/regles.yaml"),
        ),
        SourceFile::new(
            "variantes.yaml",
            include_str!("../../../programmes/itn7/variantes.yaml"),
        ),
        SourceFile::new(
            "criteres.yaml",
            include_str!("../../../programmes/itn7/criteres.yaml"),
        ),
    ]
}

/// The built-in ITN7 programme. Its files are checked by the tests, so a failure here is a
/// build defect: callers at start-up report it and stop.
pub fn itn7() -> Result<Programme, Diagnostics> {
    Programme::load(&itn7_files())
}

/// The programme a server or command runs: the configured folder, or the built-in ITN7.
pub fn configured(path: Option<&Path>) -> AppResult<Programme> {
    match path {
        Some(p) => load(p),
        None => itn7(),
    }
    .map_err(|d| {
        AppError::Invalid(format!(
            "programme invalide ({} erreur{}) :\n{d}",
            d.0.len(),
            if d.0.len() > 1 { "s" } else { "" }
        ))
    })
}
