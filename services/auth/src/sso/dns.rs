//! A DNS TXT lookup over UDP (RFC 1035), enough for domain verification: one question, the
//! answers' TXT strings. Kept here rather than a resolver crate: it is one query type, and
//! the server it asks is configurable so tests can run their own.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

const TXT: u16 = 16;
const CLASS_IN: u16 = 1;
const ATTEMPTS: usize = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The first `nameserver` of /etc/resolv.conf.
pub fn system_server() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver")).then(|| words.next()?.parse().ok().map(|ip| SocketAddr::new(ip, 53)))?
    })
}

/// The TXT strings at `name` (each record's strings joined), empty when there are none.
pub async fn txt_records(server: SocketAddr, name: &str) -> Result<Vec<String>, String> {
    let id: u16 = rand_id();
    let query = encode_query(id, name)?;
    let bind: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(bind).await.map_err(|e| format!("DNS socket: {e}"))?;
    socket.connect(server).await.map_err(|e| format!("DNS server {server}: {e}"))?;
    let mut buffer = vec![0u8; 4096];
    for _ in 0..ATTEMPTS {
        socket.send(&query).await.map_err(|e| format!("DNS server {server}: {e}"))?;
        let Ok(received) = tokio::time::timeout(ATTEMPT_TIMEOUT, socket.recv(&mut buffer)).await else { continue };
        let length = received.map_err(|e| format!("DNS server {server}: {e}"))?;
        if let Some(answer) = decode_answer(&buffer[..length], id)? {
            return Ok(answer);
        }
    }
    Err(format!("the DNS server {server} did not answer"))
}

fn rand_id() -> u16 {
    let bytes = complianceiq_kit::crypto::random_bytes(2);
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn encode_query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut query = Vec::with_capacity(18 + name.len());
    query.extend_from_slice(&id.to_be_bytes());
    // Recursion desired; one question.
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name} is not a domain name"));
        }
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&TXT.to_be_bytes());
    query.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(query)
}

/// `None` for a datagram that is not the answer to query `id` (ignored, as a resolver does).
fn decode_answer(message: &[u8], id: u16) -> Result<Option<Vec<String>>, String> {
    let read_u16 = |at: usize| message.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let malformed = || "the DNS answer is malformed".to_string();
    if message.len() < 12 || read_u16(0) != Some(id) || message[2] & 0x80 == 0 {
        return Ok(None);
    }
    match message[3] & 0x0f {
        0 => {}
        // NXDOMAIN: no such name, so no record.
        3 => return Ok(Some(Vec::new())),
        code => return Err(format!("the DNS server answered error code {code}")),
    }
    let questions = read_u16(4).ok_or_else(malformed)?;
    let answers = read_u16(6).ok_or_else(malformed)?;
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at).ok_or_else(malformed)? + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        at = skip_name(message, at).ok_or_else(malformed)?;
        let kind = read_u16(at).ok_or_else(malformed)?;
        let length = read_u16(at + 8).ok_or_else(malformed)? as usize;
        let data = message.get(at + 10..at + 10 + length).ok_or_else(malformed)?;
        at += 10 + length;
        if kind != TXT {
            continue;
        }
        let mut text = Vec::new();
        let mut offset = 0;
        while offset < data.len() {
            let size = data[offset] as usize;
            text.extend_from_slice(data.get(offset + 1..offset + 1 + size).ok_or_else(malformed)?);
            offset += 1 + size;
        }
        records.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(Some(records))
}

/// The offset after a (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + l as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txt_answer_with_a_compressed_name_is_read() {
        let query = encode_query(7, "_v.example.com").unwrap();
        let mut answer = query.clone();
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 1;
        answer.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 8, 3, b'a', b'b', b'c', 3, b'd', b'e', b'f']);
        assert_eq!(decode_answer(&answer, 7).unwrap(), Some(vec!["abcdef".to_string()]));
        assert_eq!(decode_answer(&answer, 8).unwrap(), None, "another query's answer is ignored");
        answer.truncate(answer.len() - 3);
        assert!(decode_answer(&answer, 7).is_err(), "a truncated record is an error, not a panic");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(encode_query(1, "a..b").is_err());
        assert!(encode_query(1, &"x".repeat(64)).is_err());
    }
}
