//! A fault-injecting HTTP proxy on a loopback port, between the tool and a real server (the
//! suite's registry or moto). Each connection carries one request (the proxy adds
//! `Connection: close`), so faults are chosen per request: a rule matches a method and a path
//! fragment and fires on its next `times` matching requests. What fired is logged, so a test can
//! check that the fault it meant really happened.
//!
//! Faults: an answer of its own (500/502/503/429 with `Retry-After`, the body both a registry's
//! and AWS's error parsers read), a response cut after N bytes, a request held longer than the
//! tool's timeout, a body truncated short of its `Content-Length`, one byte of the response body
//! or of the request body changed, a request held a while and then passed on. Every request is
//! logged too, so a test can check that none was made.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers with this status (and `Retry-After: 1`) instead of the server.
    Status(u16),
    /// Passes the response on, but closes the connection after this many of its bytes.
    CutAfter(usize),
    /// Holds the request (sends nothing on) this long, then closes the connection.
    Stall(Duration),
    /// Passes the response head on, then the body short of its last this-many bytes, then closes.
    Truncate(usize),
    /// Changes one byte in the middle of the response body.
    CorruptResponse,
    /// Changes the middle byte of the request body (where a ZIP's base64 or a blob's bytes are).
    CorruptRequest,
    /// Holds the request this long, then passes it on unchanged (to make two clients' calls
    /// overlap).
    Delay(Duration),
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// `GET`, `PUT`, ... or `""` for any.
    pub method: &'static str,
    /// A fragment of the request target (path and query).
    pub path_contains: String,
    pub fault: Fault,
    /// How many matching requests it fires on.
    pub times: usize,
}

impl Rule {
    pub fn new(method: &'static str, path_contains: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            method,
            path_contains: path_contains.to_string(),
            fault,
            times,
        }
    }
}

/// `(<method> <target>, body)` of each recorded request.
type Bodies = Mutex<Vec<(String, Vec<u8>)>>;

pub struct FaultProxy {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    fired: Arc<Mutex<Vec<String>>>,
    /// `<method> <target>` of every request that reached the proxy, in order.
    requests: Arc<Mutex<Vec<String>>>,
    /// With `record_bodies`: `<method> <target>` and the body of every request without a fault.
    bodies: Arc<Bodies>,
    recording: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`host:port`), serving until the test process ends.
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let fired: Arc<Mutex<Vec<String>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let bodies: Arc<Bodies> = Arc::default();
        let recording: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (upstream, rules_, fired_, requests_) = (
            upstream.to_string(),
            rules.clone(),
            fired.clone(),
            requests.clone(),
        );
        let (bodies_, recording_) = (bodies.clone(), recording.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rules, fired, requests) = (
                    upstream.clone(),
                    rules_.clone(),
                    fired_.clone(),
                    requests_.clone(),
                );
                let record = recording_
                    .load(std::sync::atomic::Ordering::SeqCst)
                    .then(|| bodies_.clone());
                std::thread::spawn(move || {
                    let _ = serve(
                        client,
                        &upstream,
                        &rules,
                        &fired,
                        &requests,
                        record.as_deref(),
                    );
                });
            }
        });
        FaultProxy {
            addr,
            rules,
            fired,
            requests,
            bodies,
            recording,
        }
    }

    pub fn inject(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule (those that have not fired yet too) and forgets what fired.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
        self.fired.lock().unwrap().clear();
        self.requests.lock().unwrap().clear();
        self.bodies.lock().unwrap().clear();
    }

    /// `<method> <target>` of every request since the start (or the last `clear`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// From now on, keeps the body of every request that no rule fires on (read whole before it
    /// is forwarded), for [`FaultProxy::bodies`].
    pub fn record_bodies(&self) {
        self.recording
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// `(<method> <target>, body)` of the requests recorded since `record_bodies`, in order.
    pub fn bodies(&self) -> Vec<(String, Vec<u8>)> {
        self.bodies.lock().unwrap().clone()
    }

    /// The JSON bodies of the recorded requests whose `<method> <target>` contains `fragment`.
    pub fn json_bodies(&self, fragment: &str) -> Vec<serde_json::Value> {
        self.bodies()
            .into_iter()
            .filter(|(request, _)| request.contains(fragment))
            .map(|(request, body)| {
                serde_json::from_slice(&body)
                    .unwrap_or_else(|err| panic!("{request}: body is not JSON: {err}"))
            })
            .collect()
    }

    /// `<fault> <method> <target>` for each fault that fired, in order.
    pub fn fired(&self) -> Vec<String> {
        self.fired.lock().unwrap().clone()
    }
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    fired: &Mutex<Vec<String>>,
    requests: &Mutex<Vec<String>>,
    record: Option<&Bodies>,
) -> std::io::Result<()> {
    let (head, mut early_body) = read_head(&mut client)?;
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    requests.lock().unwrap().push(format!("{method} {target}"));
    let fault = {
        let mut rules = rules.lock().unwrap();
        let found = rules.iter_mut().find(|r| {
            r.times > 0
                && (r.method.is_empty() || r.method == method)
                && target.contains(&r.path_contains)
        });
        found.map(|rule| {
            rule.times -= 1;
            rule.fault.clone()
        })
    };
    if let Some(fault) = &fault {
        fired
            .lock()
            .unwrap()
            .push(format!("{fault:?} {method} {target}"));
    }
    if let (Some(bodies), None) = (record, &fault) {
        let length = content_length(&text).unwrap_or(0);
        if early_body.len() < length {
            let mut rest = vec![0; length - early_body.len()];
            client.read_exact(&mut rest)?;
            early_body.extend_from_slice(&rest);
        }
        bodies
            .lock()
            .unwrap()
            .push((format!("{method} {target}"), early_body.clone()));
    }
    match fault {
        Some(Fault::Status(code)) => {
            drain_body(&mut client, &text, early_body.len())?;
            let body = format!(
                r#"{{"errors":[{{"code":"{}","message":"injected {code}"}}],"__type":"{}","message":"injected {code}"}}"#,
                if code == 429 {
                    "TOOMANYREQUESTS"
                } else {
                    "UNAVAILABLE"
                },
                if code == 429 {
                    "TooManyRequestsException"
                } else {
                    "ServiceException"
                },
            );
            let reason = match code {
                429 => "Too Many Requests",
                500 => "Internal Server Error",
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                _ => "Error",
            };
            write!(
                client,
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            client.flush()?;
            return Ok(());
        }
        Some(Fault::Stall(duration)) => {
            std::thread::sleep(duration);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Delay(duration)) => std::thread::sleep(duration),
        _ => {}
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&with_connection_close(&text))?;
    let mut first = early_body;
    if matches!(fault, Some(Fault::CorruptRequest)) {
        let length = content_length(&text).unwrap_or(first.len());
        let at = length / 2;
        if at < first.len() {
            first[at] = changed(first[at]);
        } else {
            // Read on to the byte to change, so the change is made here.
            let mut more = vec![0; at + 1 - first.len()];
            client.read_exact(&mut more)?;
            first.extend_from_slice(&more);
            first[at] = changed(first[at]);
        }
    }
    server.write_all(&first)?;
    // The rest of the request body, as it comes.
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let result = relay_response(&mut server, &mut client, fault.as_ref());
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    result
}

/// Another byte that stays a letter or digit when it was one (a base64 body stays base64).
fn changed(byte: u8) -> u8 {
    match byte {
        b'a'..=b'y' | b'A'..=b'Y' | b'0'..=b'8' => byte + 1,
        b'z' => b'a',
        b'Z' => b'A',
        b'9' => b'0',
        other => other ^ 0x01,
    }
}

fn relay_response(
    server: &mut TcpStream,
    client: &mut TcpStream,
    fault: Option<&Fault>,
) -> std::io::Result<()> {
    match fault {
        Some(Fault::CutAfter(limit)) => {
            let mut sent = 0;
            let mut buffer = [0u8; 16 * 1024];
            while sent < *limit {
                let n = server.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                let take = n.min(limit - sent);
                client.write_all(&buffer[..take])?;
                sent += take;
            }
            Ok(())
        }
        Some(Fault::Truncate(short)) => {
            let (head, mut body) = read_head(server)?;
            let text = String::from_utf8_lossy(&head).into_owned();
            let length = content_length(&text).unwrap_or(0);
            let keep = length.saturating_sub(*short);
            client.write_all(&head)?;
            while body.len() < keep {
                let mut buffer = [0u8; 16 * 1024];
                let n = server.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buffer[..n]);
            }
            client.write_all(&body[..keep.min(body.len())])?;
            Ok(())
        }
        Some(Fault::CorruptResponse) => {
            let (head, mut body) = read_head(server)?;
            let text = String::from_utf8_lossy(&head).into_owned();
            let length = content_length(&text).unwrap_or(0);
            server.read_to_end(&mut body)?;
            if length > 0 && body.len() >= length {
                body[length / 2] = changed(body[length / 2]);
            }
            client.write_all(&head)?;
            client.write_all(&body)?;
            Ok(())
        }
        _ => {
            std::io::copy(server, client)?;
            Ok(())
        }
    }
}

/// The head of a request or response (through the blank line), and the bytes read past it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = data.split_off(end + 4);
            return Ok((data, rest));
        }
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        data.extend_from_slice(&buffer[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn content_length(head: &str) -> Option<usize> {
    header(head, "content-length")?.parse().ok()
}

/// Reads the rest of a request's body, so an answer of the proxy's own is not lost to a reset.
fn drain_body(client: &mut TcpStream, head: &str, already: usize) -> std::io::Result<()> {
    if let Some(length) = content_length(head) {
        let mut rest = vec![0; length.saturating_sub(already)];
        client.read_exact(&mut rest)?;
    } else if header(head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        client.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink);
    }
    Ok(())
}

/// The head with its `Connection` header replaced by `close`: one request per connection.
fn with_connection_close(head: &str) -> Vec<u8> {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

/// A loopback address that accepts connections and never answers a byte (a hung registry or
/// AWS endpoint). The connections are held open for as long as the test process lives.
pub fn silent_listener() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}
