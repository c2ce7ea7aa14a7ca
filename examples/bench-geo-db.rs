//! Writes the MaxMind DB the policy benchmark uses (bench/policy.sh):
//! 127.0.0.0/8 in Germany (EU), plus 20,000 filler /24 networks across the
//! IPv4 space so that lookups walk a tree of realistic depth.
//!
//! Usage: cargo run --release --example bench-geo-db -- OUT.mmdb

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: bench-geo-db OUT.mmdb")?;
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    let record = |continent: &str, country: &str, lat: f64, lon: f64| {
        serde_json::json!({
            "continent": {"code": continent, "names": {"en": continent}},
            "country": {"iso_code": country, "names": {"en": country}},
            "location": {"latitude": lat, "longitude": lon, "accuracy_radius": 100},
        })
    };
    writer.insert("127.0.0.0/8".parse::<ipnet::IpNet>()?, &record("EU", "DE", 50.1, 8.7))?;
    let countries = [
        ("NA", "US", 38.9, -77.0),
        ("EU", "FR", 48.9, 2.4),
        ("AS", "JP", 35.7, 139.7),
        ("SA", "BR", -23.5, -46.6),
    ];
    for i in 0u32..20_000 {
        // Spread over 1.0.0.0 – 100.255.255.0, skipping 127/8.
        let n = 0x0100_0000 + i.wrapping_mul(2_654_435_761) % 0x6400_0000;
        let net = std::net::Ipv4Addr::from(n & 0xffff_ff00);
        let (continent, country, lat, lon) = countries[(i % 4) as usize];
        writer.insert(format!("{net}/24").parse::<ipnet::IpNet>()?, &record(continent, country, lat, lon))?;
    }
    std::fs::write(&out, writer.to_bytes()?)?;
    println!("wrote {out}");
    Ok(())
}
