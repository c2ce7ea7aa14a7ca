//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the DTOs' schemas, with the bearer scheme and the error answers every
//! /v1 operation can give.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{
    changes, cidr_collections, health_checks, keys, regions, rrsets, system, test_dns, usage, zonefile, zones,
};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Signpost control API",
        version = "1",
        description = "Route 53's hosted zones, record sets and change batches, health checks, CIDR \
            collections, TestDNSAnswer and usage, self-hosted. \
            Every /v1 route but /v1/openapi.json needs `Authorization: Bearer <key>`."
    ),
    paths(
        keys::create_key, keys::list_keys, keys::get_key, keys::delete_key,
        zones::create_zone, zones::list_zones, zones::get_zone, zones::delete_zone,
        rrsets::list_rrsets, changes::change_rrsets, changes::get_change,
        zonefile::export_zone, zonefile::import_zone, test_dns::test_dns_answer,
        health_checks::create_health_check, health_checks::list_health_checks, health_checks::get_health_check,
        health_checks::delete_health_check, health_checks::health_check_status, health_checks::set_override,
        cidr_collections::create_collection, cidr_collections::list_collections, cidr_collections::get_collection,
        cidr_collections::replace_collection, cidr_collections::delete_collection,
        regions::get_latency_table, regions::put_latency_table, regions::list_regions, regions::put_region,
        regions::delete_region,
        usage::get_zone_usage, usage::get_account_usage,
        system::healthz, system::readyz, system::metrics,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, dto::Rrset, dto::RecordType, dto::GeoLocation, dto::GeoProximity, dto::Coordinates,
        dto::Failover, dto::CidrRouting, dto::AliasTarget, dto::AllUnhealthy, dto::Action, dto::ChangeItem,
        dto::ChangeBatch, dto::Status, dto::Change, dto::CreateZone, dto::Zone, dto::ZoneList,
        dto::RrsetList, dto::CreateKey, dto::KeyKindName, dto::Key, dto::CreatedKey, dto::KeyList, dto::Health,
        dto::HealthCheckType, dto::CreateHealthCheck, dto::HealthCheck, dto::HealthCheckList, dto::OverrideState,
        dto::SetOverride, dto::CheckerStatus, dto::HealthStatus,
        dto::CidrLocation, dto::CidrCollectionBody, dto::CidrCollection, dto::CidrCollectionList,
        dto::LatencyEntry, dto::LatencyTable, dto::Region, dto::RegionList, dto::DnsAnswer,
        dto::QueryCounts, dto::QueryCosts, dto::ZoneCost, dto::ZoneUsage, dto::AccountCost, dto::AccountUsage,
        system::Readiness,
    )),
    modifiers(&CommonAnswers),
    security(("bearer" = [])),
    tags(
        (name = "keys", description = "API keys of the account"),
        (name = "zones", description = "Hosted zones and zone files"),
        (name = "record sets", description = "Record sets, change batches and their propagation"),
        (name = "health checks", description = "Health checks, their verdicts and overrides"),
        (name = "routing", description = "CIDR collections, the measured latency table and regions"),
        (name = "usage", description = "Queries by category and their cost"),
        (name = "system", description = "Liveness and metrics (no key)"),
    ),
)]
pub struct ApiDoc;

/// Adds the bearer scheme and the error answers shared by /v1 operations.
struct CommonAnswers;

const COMMON: &[(&str, &str)] = &[
    ("400", "Malformed JSON, wrong types or failed validation; `field` names the input"),
    ("401", "No API key, or not a valid one"),
    ("403", "The key is read-only, or limited to other zones"),
    ("429", "Over the key's rate limit; retry after Retry-After seconds"),
    ("503", "The database is unreachable; retry later"),
];

fn error_response(description: &str, retry_after: bool) -> utoipa::openapi::Response {
    let mut builder = ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))));
    if retry_after {
        builder = builder.header("Retry-After", Header::new(ObjectBuilder::new().schema_type(Type::Integer)));
    }
    builder.build()
}

fn add_common(op: &mut Operation) {
    let answers = &mut op.responses.responses;
    for (code, description) in COMMON {
        answers
            .entry((*code).to_string())
            .or_insert_with(|| error_response(description, matches!(*code, "429" | "503")).into());
    }
    if let Some(body) = &op.request_body {
        answers.entry("413".to_string()).or_insert_with(|| {
            error_response("The request body is over the bound (4 MiB by default)", false).into()
        });
        let json = match body {
            utoipa::openapi::RefOr::T(body) => body.content.contains_key("application/json"),
            utoipa::openapi::RefOr::Ref(_) => false,
        };
        if json {
            answers.entry("415".to_string()).or_insert_with(|| {
                error_response("The body was not sent as `Content-Type: application/json`", false).into()
            });
        }
    }
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sp_<64 hex>").build(),
            ),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch]
                .into_iter()
                .flatten()
            {
                add_common(op);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_route_with_its_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/v1/keys",
            "/v1/keys/{id}",
            "/v1/zones",
            "/v1/zones/{id}",
            "/v1/zones/{id}/rrsets",
            "/v1/zones/{id}/changes",
            "/v1/changes/{id}",
            "/v1/zones/{id}/zonefile",
            "/v1/zones/{id}/test-dns-answer",
            "/v1/zones/{id}/usage",
            "/v1/usage",
            "/v1/health-checks",
            "/v1/health-checks/{id}",
            "/v1/health-checks/{id}/status",
            "/v1/health-checks/{id}/override",
            "/v1/cidr-collections",
            "/v1/cidr-collections/{id}",
            "/v1/latency-table",
            "/v1/regions",
            "/v1/regions/{code}",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        let post = &doc["paths"]["/v1/zones/{id}/changes"]["post"]["responses"];
        for code in ["200", "400", "401", "403", "404", "409", "413", "415", "429", "503"] {
            assert!(post.get(code).is_some(), "changes: {code} missing");
        }
        // A zone file is text: no 415 there.
        assert!(doc["paths"]["/v1/zones/{id}/zonefile"]["post"]["responses"].get("415").is_none());
        assert!(doc["paths"]["/v1/zones"]["get"]["responses"].get("413").is_none());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], serde_json::json!([{}]));
        assert_eq!(
            doc["components"]["schemas"]["RecordSet"]["additionalProperties"],
            serde_json::json!(false)
        );
    }
}
