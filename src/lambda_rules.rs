//! Lambda's rules for the values of a function's or a layer's configuration, in one place: the
//! environment (names, reserved names, values, 4 KB in all), function and layer names, the
//! handler, memory and timeout. The metadata reader (so a pack refuses them), `verify --env`/
//! `--env-file` and `deploy` (which re-checks everything it is about to send, since the manifest
//! is a file anyone can edit) all ask these functions, so what passes one passes the others and
//! AWS.
//!
//! Each check answers `Err(why)`: a sentence that states the rule (the range, the limit, the
//! characters), for the caller to prefix with where the value came from.
//!
//! Sources: AWS's "Lambda environment variables" page and UpdateFunctionConfiguration (keys,
//! reserved keys, 4 KB for all keys and values together, measured as Lambda's refusal shows it:
//! "exceeded the 4KB limit. String measured: {\"KEY\":\"value\",...}", the variables as one
//! compact JSON object), CreateFunction (`FunctionName`: 1-64 of
//! `[a-zA-Z0-9-_]` in name form; `Handler`: `[^\s]+`, at most 128; `MemorySize` 128-10240 MB;
//! `Timeout` 1-900 s) and PublishLayerVersion (`LayerName`: 1-140 of `[a-zA-Z0-9-_]`).

use std::ops::RangeInclusive;

/// Keys Lambda sets for every function and refuses in a function's configuration. Not reserved
/// (and so allowed): `LANG`, `PATH`, `LD_LIBRARY_PATH`, `TZ`, `AWS_LAMBDA_EXEC_WRAPPER`, ...
pub const RESERVED_ENV: [&str; 18] = [
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Lambda's limit on all keys and values of one function together, in bytes of their JSON.
pub const MAX_ENV_BYTES: usize = 4096;

/// Why `key` cannot be a Lambda environment variable, if it cannot.
pub fn check_env_key(key: &str) -> Result<(), String> {
    if RESERVED_ENV.contains(&key) {
        return Err(format!(
            "`{key}` is reserved: Lambda sets it itself and refuses it in a function's configuration"
        ));
    }
    let starts_with_letter = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter
        || key.len() < 2
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "`{key}` is not a valid name: Lambda wants a letter first, then at least one more \
             letter, digit or `_`"
        ));
    }
    Ok(())
}

/// Why `value` cannot be the value of `key`, if it cannot: a process's environment is a list of
/// C strings, so a NUL byte could never reach the function.
pub fn check_env_value(key: &str, value: &str) -> Result<(), String> {
    match value.find('\0') {
        Some(at) => Err(format!(
            "the value of `{key}` has a NUL byte (at byte {at}), which no process environment can hold"
        )),
        None => Ok(()),
    }
}

/// The help line for a bad key.
pub fn env_key_help(key: &str) -> String {
    if RESERVED_ENV.contains(&key) {
        format!(
            "remove `{key}`: Lambda sets it itself; use a name of your own (e.g. `APP_{}`) for your setting",
            key.trim_start_matches('_')
        )
    } else {
        "use names like TABLE_NAME: ASCII letters, digits and `_`, starting with a letter".into()
    }
}

/// The size Lambda counts for a set of variables: the bytes of the compact JSON object
/// `{"KEY":"value",...}` that holds them, quotes, separators and escapes included (UTF-8).
pub fn env_bytes<'a>(env: impl IntoIterator<Item = (&'a String, &'a String)>) -> usize {
    let quoted = |text: &str| {
        serde_json::to_string(text)
            .expect("a string always serializes")
            .len()
    };
    let mut count: usize = 0;
    let mut bytes = 2; // `{` and `}`
    for (key, value) in env {
        bytes += quoted(key) + 1 + quoted(value); // `"key":"value"`
        count += 1;
    }
    bytes + count.saturating_sub(1) // the commas
}

/// Why a set of variables that takes `bytes` is too large, if it is.
pub fn check_env_bytes(bytes: usize) -> Result<(), String> {
    if bytes > MAX_ENV_BYTES {
        Err(format!(
            "the variables take {bytes} bytes as Lambda measures them (the JSON object \
             {{\"KEY\":\"value\",...}}); Lambda allows {MAX_ENV_BYTES} bytes for all keys and \
             values together"
        ))
    } else {
        Ok(())
    }
}

/// Every rule at once, for a whole environment about to be sent: each key, each value, the size.
pub fn check_env<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a String)> + Clone,
) -> Result<(), String> {
    for (key, value) in env.clone() {
        check_env_key(key)?;
        check_env_value(key, value)?;
    }
    check_env_bytes(env_bytes(env))
}

/// Which of Lambda's names a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// CreateFunction's `FunctionName` (name form).
    Function,
    /// PublishLayerVersion's `LayerName` (layers, runtimes and extensions).
    Layer,
}

impl NameKind {
    /// The longest name Lambda accepts.
    pub fn max_chars(self) -> usize {
        match self {
            NameKind::Function => 64,
            NameKind::Layer => 140,
        }
    }

    /// What Lambda calls it.
    pub fn what(self) -> &'static str {
        match self {
            NameKind::Function => "function name",
            NameKind::Layer => "layer name",
        }
    }

    /// The rule, as a phrase: "1 to 64 characters of a-z, A-Z, 0-9, `-` and `_`".
    pub fn rule(self) -> String {
        format!(
            "1 to {} characters of a-z, A-Z, 0-9, `-` and `_`",
            self.max_chars()
        )
    }
}

/// The characters Lambda allows in function and layer names.
pub fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// What is wrong with `name` as a `kind` (its length, the characters Lambda refuses); empty when
/// nothing is.
pub fn name_problems(kind: NameKind, name: &str) -> Vec<String> {
    let length = name.chars().count();
    let bad: String = name.chars().filter(|c| !name_char(*c)).collect();
    let mut problems = Vec::new();
    if length > kind.max_chars() {
        problems.push(format!("it has {length} characters"));
    }
    if length == 0 {
        problems.push("it is empty".to_string());
    }
    if !bad.is_empty() {
        problems.push(format!("it contains {bad:?}"));
    }
    problems
}

/// Why `name` cannot be a `kind`, if it cannot.
pub fn check_name(kind: NameKind, name: &str) -> Result<(), String> {
    let problems = name_problems(kind, name);
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "`{name}` is not a valid Lambda {} ({}): {}s are {}",
        kind.what(),
        problems.join(", "),
        kind.what(),
        kind.rule()
    ))
}

/// CreateFunction's limit on `Handler` (pattern `[^\s]+`).
pub const MAX_HANDLER_CHARS: usize = 128;

/// Why `handler` cannot be a function's Handler, if it cannot.
pub fn check_handler(handler: &str) -> Result<(), String> {
    let length = handler.chars().count();
    if (1..=MAX_HANDLER_CHARS).contains(&length) && !handler.contains(char::is_whitespace) {
        return Ok(());
    }
    let found = if length > MAX_HANDLER_CHARS {
        format!("it has {length} characters")
    } else if length == 0 {
        "it is empty".to_string()
    } else {
        "it contains whitespace".to_string()
    };
    Err(format!(
        "{found}; Lambda's Handler is 1 to {MAX_HANDLER_CHARS} characters without whitespace"
    ))
}

/// Lambda's MemorySize range, in MB.
pub const MEMORY_MB: RangeInclusive<u64> = 128..=10_240;
/// Lambda's Timeout range, in seconds.
pub const TIMEOUT_SECONDS: RangeInclusive<u64> = 1..=900;
/// The rule for memory, as a phrase.
pub fn memory_rule() -> String {
    format!(
        "Lambda's MemorySize is a whole number of MB from {} to {}",
        MEMORY_MB.start(),
        MEMORY_MB.end()
    )
}

/// The rule for the timeout, as a phrase.
pub fn timeout_rule() -> String {
    format!(
        "Lambda's Timeout is a whole number of seconds from {} to {}",
        TIMEOUT_SECONDS.start(),
        TIMEOUT_SECONDS.end()
    )
}

/// Why `mb` cannot be a function's MemorySize, if it cannot.
pub fn check_memory(mb: u64) -> Result<(), String> {
    if MEMORY_MB.contains(&mb) {
        Ok(())
    } else {
        Err(format!("memory {mb} MB is out of range: {}", memory_rule()))
    }
}

/// Why `seconds` cannot be a function's Timeout, if it cannot.
pub fn check_timeout(seconds: u64) -> Result<(), String> {
    if TIMEOUT_SECONDS.contains(&seconds) {
        Ok(())
    } else {
        Err(format!(
            "timeout {seconds} s is out of range: {}",
            timeout_rule()
        ))
    }
}

/// Lambda's EphemeralStorage.Size range (`/tmp`), in MB.
pub const EPHEMERAL_STORAGE_MB: RangeInclusive<u64> = 512..=10_240;

/// The rule for ephemeral storage, as a phrase.
pub fn ephemeral_storage_rule() -> String {
    format!(
        "Lambda's EphemeralStorage.Size is a whole number of MB from {} to {}",
        EPHEMERAL_STORAGE_MB.start(),
        EPHEMERAL_STORAGE_MB.end()
    )
}

/// Why `mb` cannot be a function's EphemeralStorage.Size, if it cannot.
pub fn check_ephemeral_storage(mb: u64) -> Result<(), String> {
    if EPHEMERAL_STORAGE_MB.contains(&mb) {
        Ok(())
    } else {
        Err(format!(
            "ephemeral storage {mb} MB is out of range: {}",
            ephemeral_storage_rule()
        ))
    }
}

/// Managed Instances' PerExecutionEnvironmentMaxConcurrency range (LambdaManagedInstancesCapacityProviderConfig).
pub const MAX_CONCURRENCY: RangeInclusive<u64> = 1..=1600;

/// The rule for `max_concurrency`, as a phrase.
pub fn max_concurrency_rule() -> String {
    format!(
        "Lambda's PerExecutionEnvironmentMaxConcurrency is a whole number from {} to {}",
        MAX_CONCURRENCY.start(),
        MAX_CONCURRENCY.end()
    )
}

/// Why `n` cannot be a PerExecutionEnvironmentMaxConcurrency, if it cannot.
pub fn check_max_concurrency(n: u64) -> Result<(), String> {
    if MAX_CONCURRENCY.contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "max concurrency {n} is out of range: {}",
            max_concurrency_rule()
        ))
    }
}

/// Managed Instances' ExecutionEnvironmentMemoryGiBPerVCpu range, in GiB.
pub const MEMORY_PER_VCPU_GIB: RangeInclusive<f64> = 2.0..=8.0;

/// Why `gib` cannot be an ExecutionEnvironmentMemoryGiBPerVCpu, if it cannot.
pub fn check_memory_per_vcpu(gib: f64) -> Result<(), String> {
    if MEMORY_PER_VCPU_GIB.contains(&gib) {
        Ok(())
    } else {
        Err(format!(
            "memory per vCPU {gib} GiB is out of range: Lambda's ExecutionEnvironmentMemoryGiBPerVCpu is from {} to {} GiB",
            MEMORY_PER_VCPU_GIB.start(),
            MEMORY_PER_VCPU_GIB.end()
        ))
    }
}

/// Why `arn` cannot be a CapacityProviderArn, if it cannot: Lambda's pattern
/// `arn:aws[a-zA-Z-]*:lambda:<region>:<12 digits>:capacity-provider:[a-zA-Z0-9-_]+`, 1-140 characters.
pub fn check_capacity_provider_arn(arn: &str) -> Result<(), String> {
    let fields: Vec<&str> = arn.splitn(7, ':').collect();
    let well_formed = arn.len() <= 140
        && fields.len() == 7
        && fields[0] == "arn"
        && fields[1].starts_with("aws")
        && fields[2] == "lambda"
        && !fields[3].is_empty()
        && fields[4].len() == 12
        && fields[4].chars().all(|c| c.is_ascii_digit())
        && fields[5] == "capacity-provider"
        && !fields[6].is_empty()
        && fields[6].chars().all(name_char);
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{arn}` is not a capacity provider ARN: Lambda wants \
             arn:aws:lambda:<region>:<account>:capacity-provider:<name>, at most 140 characters"
        ))
    }
}

/// Tags a Lambda function may carry (AWS's limit for user tags on one resource).
pub const MAX_TAGS: usize = 50;
/// Longest tag key and value, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// The characters AWS allows in tag keys and values besides letters and digits (any language).
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || " _.:/=+-@".contains(c)
}

/// Why `key` cannot be a tag key, if it cannot. `aws:` is AWS's own prefix; `lambda-pack:` is
/// this tool's (ownership), so neither is the metadata's to set.
pub fn check_tag_key(key: &str) -> Result<(), String> {
    let count = key.chars().count();
    if count == 0 || count > MAX_TAG_KEY_CHARS || !key.chars().all(tag_char) {
        return Err(format!(
            "tag key `{key}` is not valid: 1 to {MAX_TAG_KEY_CHARS} letters, digits, spaces and _ . : / = + - @"
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "tag key `{key}` starts with `aws:`, which AWS reserves"
        ));
    }
    if key.starts_with("lambda-pack:") {
        return Err(format!(
            "tag key `{key}` starts with `lambda-pack:`, which deploy sets itself (ownership)"
        ));
    }
    Ok(())
}

/// Why `value` cannot be the value of tag `key`, if it cannot.
pub fn check_tag_value(key: &str, value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_TAG_VALUE_CHARS || !value.chars().all(tag_char) {
        return Err(format!(
            "the value of tag `{key}` is not valid: 0 to {MAX_TAG_VALUE_CHARS} letters, digits, spaces and _ . : / = + - @"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn keys_follow_lambdas_rules() {
        assert!(check_env_key("TABLE_NAME").is_ok());
        assert!(check_env_key("a1").is_ok());
        assert!(check_env_key("TZ").is_ok());
        assert!(check_env_key("AWS_LAMBDA_EXEC_WRAPPER").is_ok());
        for bad in ["", "A", "1ABC", "_X", "WITH-DASH", "WITH SPACE", "É_NAME"] {
            assert!(check_env_key(bad).is_err(), "{bad}");
        }
        for reserved in [
            "AWS_REGION",
            "_HANDLER",
            "AWS_LAMBDA_RUNTIME_API",
            "AWS_LAMBDA_FUNCTION_NAME",
            "LAMBDA_TASK_ROOT",
        ] {
            let why = check_env_key(reserved).unwrap_err();
            assert!(why.contains("reserved"), "{why}");
        }
    }

    #[test]
    fn an_environment_is_4096_bytes_of_keys_and_values_at_most() {
        // `{"AB":"xx…x"}`: 9 bytes around the value.
        let at_limit: BTreeMap<String, String> =
            [("AB".to_string(), "x".repeat(MAX_ENV_BYTES - 9))].into();
        assert_eq!(env_bytes(&at_limit), 4096);
        assert!(check_env(&at_limit).is_ok());
        // A second pair adds its quotes, colon and comma: `,"CD":""`.
        let over: BTreeMap<String, String> = [
            ("AB".to_string(), "x".repeat(MAX_ENV_BYTES - 9)),
            ("CD".to_string(), String::new()),
        ]
        .into();
        let why = check_env(&over).unwrap_err();
        assert!(why.contains("4104 bytes"), "{why}");
        // Escapes count as sent: a quote is `\"`, a newline `\n`; UTF-8 as its bytes.
        let escaped: BTreeMap<String, String> = [("AB".to_string(), "\"\né".to_string())].into();
        assert_eq!(env_bytes(&escaped), r#"{"AB":"\"\né"}"#.len());
        assert_eq!(env_bytes(&BTreeMap::new()), 2);
        assert!(why.contains("Lambda allows 4096 bytes"), "{why}");
        let nul: BTreeMap<String, String> = [("AB".to_string(), "a\0b".to_string())].into();
        assert!(
            check_env(&nul)
                .unwrap_err()
                .contains("NUL byte (at byte 1)")
        );
        let reserved: BTreeMap<String, String> =
            [("AWS_REGION".to_string(), "eu-west-1".to_string())].into();
        assert!(check_env(&reserved).unwrap_err().contains("reserved"));
    }

    #[test]
    fn names_handlers_memory_and_timeout_state_the_rule() {
        assert!(check_name(NameKind::Function, &"a".repeat(64)).is_ok());
        assert!(check_name(NameKind::Layer, &"a".repeat(140)).is_ok());
        let why = check_name(NameKind::Function, "bad name!/../x").unwrap_err();
        assert!(why.contains(r#"it contains " !/../""#), "{why}");
        assert!(why.contains("1 to 64 characters"), "{why}");
        let why = check_name(NameKind::Layer, &"l".repeat(141)).unwrap_err();
        assert!(why.contains("141 characters"), "{why}");
        assert!(check_name(NameKind::Layer, "").is_err());

        assert!(check_handler("bootstrap").is_ok());
        assert!(check_handler(&"h".repeat(128)).is_ok());
        let why = check_handler(&"h ".repeat(105)).unwrap_err();
        assert!(why.contains("210 characters"), "{why}");
        assert!(
            why.contains("1 to 128 characters without whitespace"),
            "{why}"
        );
        assert!(check_handler("index handler").is_err());
        assert!(check_handler("").is_err());

        for ok in [128, 10_240] {
            assert!(check_memory(ok).is_ok());
        }
        for ok in [1, 900] {
            assert!(check_timeout(ok).is_ok());
        }
        let why = check_memory(64).unwrap_err();
        assert!(why.contains("from 128 to 10240"), "{why}");
        let why = check_memory(10_241).unwrap_err();
        assert!(why.contains("memory 10241 MB"), "{why}");
        let why = check_timeout(0).unwrap_err();
        assert!(why.contains("from 1 to 900"), "{why}");
        assert!(check_timeout(901).is_err());
    }
}
