//! `${NAME}` and `${NAME:-default}` substitution on the raw text, line by line so that error
//! lines stay true. Values are escaped for TOML basic strings, where secrets are meant to go.

pub struct InterpolateError {
    pub line: usize,
    pub message: String,
}

pub fn interpolate(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(raw.len());
    for (idx, line) in raw.split_inclusive('\n').enumerate() {
        let err = |message: String| InterpolateError { line: idx + 1, message };
        // Comment lines are left alone: examples document the syntax in comments.
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| err("unterminated `${` (write `${NAME}`)".into()))?;
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(format!("invalid variable name `{name}` in `${{{expr}}}`")));
            }
            let value = match (lookup(name), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(err(format!("environment variable {name} is not set (export it, or write ${{{name}:-default}})")))
                }
            };
            if value.contains('\n') {
                return Err(err(format!("environment variable {name} contains a newline")));
            }
            out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_with_defaults_and_escapes() {
        let look = |n: &str| (n == "A").then(|| "x\"y".to_string());
        let out = interpolate("a = \"${A}\"\nb = \"${B:-def}\"\n", look).ok().unwrap();
        assert_eq!(out, "a = \"x\\\"y\"\nb = \"def\"\n");
        let e = interpolate("\n\nc = \"${C}\"", look).err().unwrap();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("C is not set"));
    }
}
