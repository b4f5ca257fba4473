//! The `TOKEND__SECTION__KEY` environment overlay, applied to the parsed
//! TOML before it is read into sections.

/// Applies one `TOKEND__A__B__0__C=value` override to the table.
pub(super) fn overlay(table: &mut toml::Table, path: &str, raw: &str) -> Result<(), String> {
    let segments: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err("empty path segment".into());
    }
    let value = parse_env_value(raw);
    let mut current = TargetMut::Table(table);
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        let next_is_index = segments
            .get(i + 1)
            .is_some_and(|s| s.parse::<usize>().is_ok());
        let fresh = || {
            if next_is_index {
                toml::Value::Array(Vec::new())
            } else {
                toml::Value::Table(toml::Table::new())
            }
        };
        let slot: &mut toml::Value = match current {
            TargetMut::Table(t) => {
                if i == last {
                    t.insert(seg.clone(), value);
                    return Ok(());
                }
                t.entry(seg.clone()).or_insert_with(fresh)
            }
            TargetMut::Array(a) => {
                let idx: usize = seg
                    .parse()
                    .map_err(|_| format!("{seg:?} is not an array index"))?;
                if idx > a.len() {
                    return Err(format!("index {idx} skips entries (array has {})", a.len()));
                }
                if i == last {
                    if idx == a.len() {
                        a.push(value)
                    } else {
                        a[idx] = value
                    }
                    return Ok(());
                }
                if idx == a.len() {
                    a.push(fresh());
                }
                &mut a[idx]
            }
        };
        current = match slot {
            toml::Value::Table(t) => TargetMut::Table(t),
            toml::Value::Array(a) => TargetMut::Array(a),
            _ => return Err(format!("{seg:?} is not a table or array")),
        };
    }
    Ok(())
}

enum TargetMut<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}

/// An environment value is read as TOML (`30`, `true`, `["a","b"]`), else as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}
