//! Checks applied to regex hits: checksums (Luhn, IBAN mod-97), public IP
//! ranges and reserved e-mail domains.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The Luhn checksum over ASCII digits (other bytes are ignored).
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for (i, b) in digits.bytes().rev().filter(u8::is_ascii_digit).enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        n += 1;
    }
    n > 0 && sum % 10 == 0
}

/// The IBAN length of a country (ISO 3166 alpha-2, uppercase), from the
/// SWIFT IBAN registry. `None` for countries without IBANs.
pub fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FK" | "FO" | "GL" | "NL" | "SD" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "MN" | "XK" => 20,
        "CH" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "CR" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "OM" | "SO" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "LY" | "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "BI" | "DJ" | "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HN" | "HU" | "LB" | "NI" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" | "YE" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        "RU" => 33,
        _ => return None,
    })
}

/// An IBAN without spaces, uppercase: the country's length, check digits
/// `02..=98`, and the ISO 13616 mod-97 checksum equal to 1.
pub fn iban_valid(iban: &str) -> bool {
    let b = iban.as_bytes();
    if b.len() < 15 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (country, check) = (&iban[..2], &iban[2..4]);
    if iban_length(country) != Some(b.len()) || !check.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    // Move the first four characters to the end, letters become 10..=35.
    let mut rem = 0u32;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// A public (globally routable, non-reserved) IPv4 address: not in
/// 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24,
/// 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24,
/// 203.0.113/24, 224/4 (multicast) or 240/4 (reserved, broadcast).
pub fn ipv4_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || (a == 100 && (64..128).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// A public IPv6 address: global unicast (2000::/3) outside 2001::/23
/// (IETF protocol assignments), 2001:db8::/32 and 3fff::/20
/// (documentation) and 2002::/16 (6to4); or an IPv4-mapped address
/// (`::ffff:a.b.c.d`) whose IPv4 address is public.
pub fn ipv6_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_public(v4);
    }
    let s = ip.segments();
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] < 0x200)
        && !(s[0] == 0x2001 && s[1] == 0x0db8)
        && s[0] != 0x2002
        && !(s[0] == 0x3fff && s[1] < 0x1000)
}

/// E-mail domains that are reserved for examples (RFC 2606, RFC 6761), so
/// an address there is not personal, and the placeholder
/// `email@example.com` is not detected again.
pub fn email_domain_reserved(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    let tld = d.rsplit('.').next().unwrap_or("");
    matches!(tld, "example" | "invalid" | "test" | "localhost")
        || ["example.com", "example.net", "example.org"]
            .iter()
            .any(|r| d == *r || d.ends_with(&format!(".{r}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("4111-1111-1111-1111"));
        assert!(luhn_valid("378282246310005"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn iban() {
        // The standard examples of the IBAN registry.
        assert!(iban_valid("GB82WEST12345698765432"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("NO9386011117947"));
        assert!(!iban_valid("GB82WEST12345698765433"));
        assert!(!iban_valid("GB82WEST1234569876543"));
        assert!(!iban_valid("ZZ82WEST12345698765432"));
        assert!(!iban_valid("gb82west12345698765432"));
        assert!(!iban_valid("GB82WEST1234569876543é"));
    }

    #[test]
    fn public_ipv4() {
        for ip in ["8.8.8.8", "106.31.73.20", "172.32.0.1", "100.128.0.1"] {
            assert!(ipv4_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.1.2.3",
            "127.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
        ] {
            assert!(!ipv4_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn public_ipv6() {
        for ip in [
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(ipv6_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "2001:db8::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "2002::1",
            "::add",
        ] {
            assert!(!ipv6_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn reserved_email_domains() {
        assert!(email_domain_reserved("example.com"));
        assert!(email_domain_reserved("mail.Example.ORG"));
        assert!(email_domain_reserved("host.test"));
        assert!(!email_domain_reserved("myexample.com"));
        assert!(!email_domain_reserved("gmail.com"));
    }
}
