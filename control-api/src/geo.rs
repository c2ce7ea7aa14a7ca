//! Geolocation codes a record set may use: Route 53's continents, ISO 3166-1
//! alpha-2 countries (and `*`, the default location), and subdivisions.

/// Continent codes (Route 53's `ContinentCode`).
pub const CONTINENTS: &[&str] = &["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// ISO 3166-1 alpha-2 country codes, plus `XK` (Kosovo), which Route 53 accepts.
const COUNTRIES: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
DE DJ DK DM DO DZ \
EC EE EG EH ER ES ET \
FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ \
OM \
PA PE PF PG PH PK PL PM PN PR PS PT PW PY \
QA \
RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ \
UA UG UM US UY UZ \
VA VC VE VG VI VN VU \
WF WS \
XK \
YE YT \
ZA ZM ZW";

/// US subdivisions Route 53 accepts: the states and DC.
const US_STATES: &str = "AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS MT \
NC ND NE NH NJ NM NV NY OH OK OR PA RI SC SD TN TX UT VA VT WA WI WV WY";

/// Whether `code` (upper case) is a continent code.
pub fn is_continent(code: &str) -> bool {
    CONTINENTS.contains(&code)
}

/// Whether `code` (upper case) is a country code.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

/// Whether `code` (upper case) is a subdivision of `country`: a US state
/// for the US, else an ISO 3166-2 suffix (1 to 3 letters or digits).
pub fn is_subdivision(country: &str, code: &str) -> bool {
    if country == "US" {
        return code.len() == 2 && US_STATES.split(' ').any(|s| s == code);
    }
    (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_what_they_should() {
        assert_eq!(COUNTRIES.split(' ').count(), 250, "249 ISO 3166-1 codes and XK");
        assert_eq!(US_STATES.split(' ').count(), 51);
        assert!(is_country("DE") && is_country("US") && !is_country("ZZ") && !is_country("D"));
        assert!(is_continent("EU") && !is_continent("XX"));
        assert!(is_subdivision("US", "CA") && !is_subdivision("US", "XX"));
        assert!(is_subdivision("DE", "BY") && !is_subdivision("DE", "TOOLONG"));
        let unique: std::collections::HashSet<&str> = COUNTRIES.split(' ').collect();
        assert_eq!(unique.len(), 250, "no duplicates");
        let unique_states: std::collections::HashSet<&str> = US_STATES.split(' ').collect();
        assert_eq!(unique_states.len(), 51, "no duplicate states");
    }
}
