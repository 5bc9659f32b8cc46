//! The API's OpenAPI document: generated from the handlers'
//! `#[utoipa::path]` annotations and the API types' schemas, then
//! completed from the route table, so what the code enforces is what the
//! document says: each operation's action and the roles the policy lets
//! do it, its path parameters, `?tenant=` where it acts in a tenant, the
//! error body, and how callers authenticate. Served at
//! `GET /1.0/openapi.json`; `docs/openapi.json` is a copy a test keeps
//! equal to it.

use super::routes::Endpoint;
use serde_json::{json, Value};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "croft",
        description = "The croft VPS hosting API: VPSes, their snapshots, networking and images, tenants with quotas and plans, tokens and trusted certificates, jobs and events."
    ),
    paths(
        super::instances::list,
        super::instances::launch,
        super::instances::info,
        super::instances::delete,
        super::instances::state,
        super::instances::change_state,
        super::instances::host_details,
        super::instances::patch_config,
        super::instances::console_log,
        super::instances::copy,
        super::instances::publish,
        super::instances::rebuild,
        super::instances::rename,
        super::instances::set_password,
        super::instances::list_ssh_keys,
        super::instances::add_ssh_key,
        super::instances::remove_ssh_key,
        super::instances::traffic,
        super::instances::usage_history,
        super::instances::list_pools,
        super::instances::pool_info,
        super::snapshots::list,
        super::snapshots::create,
        super::snapshots::remove,
        super::snapshots::restore,
        super::snapshots::export,
        super::network::list_forwards,
        super::network::add_forward,
        super::network::remove_forward,
        super::network::firewall,
        super::network::add_rule,
        super::network::replace_rule,
        super::network::move_rule,
        super::network::remove_rule,
        super::network::list_networks,
        super::groups::list,
        super::groups::create,
        super::groups::info,
        super::groups::delete,
        super::groups::add_rule,
        super::groups::replace_rule,
        super::groups::move_rule,
        super::groups::remove_rule,
        super::groups::attach,
        super::groups::detach,
        super::network::network_info,
        super::network::create_network,
        super::network::add_address,
        super::network::add_nic,
        super::network::remove_nic,
        super::network::remove_address,
        super::network::delete_network,
        super::metrics::metrics,
        super::images::list,
        super::images::import,
        super::images::build,
        super::images::refresh,
        super::images::info,
        super::images::remove,
        super::images::export,
        super::jobs::list,
        super::jobs::info,
        super::jobs::wait,
        super::jobs::cancel,
        super::exec::exec,
        super::exec::console,
        super::events::events,
        super::access::whoami,
        super::access::list_tenants,
        super::access::create_tenant,
        super::access::tenant_info,
        super::access::delete_tenant,
        super::access::set_quota,
        super::access::set_images,
        super::access::set_features,
        super::access::usage,
        super::access::list_plans,
        super::access::create_plan,
        super::access::plan_info,
        super::access::delete_plan,
        super::access::list_tokens,
        super::access::create_token,
        super::access::revoke_token,
        super::access::list_users,
        super::access::create_user,
        super::access::delete_user,
        super::access::reset_password,
        super::access::change_own_password,
        super::access::create_ticket,
        super::access::audit,
        super::access::list_trust,
        super::access::create_trust_token,
        super::access::untrust,
        super::access::enroll,
        super::server_info,
        super::openapi_document
    ),
    components(schemas(
        croft_api::ErrorBody,
        croft_api::Event,
        croft_api::exec::ExecStart,
        croft_api::exec::ExecInput,
        croft_api::exec::ExecOutput
    ))
)]
struct ApiDoc;

/// The document for the API of route table `table`, as JSON (its keys
/// sorted, so the same code always gives the same text).
pub fn document(table: &[Endpoint]) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("an OpenAPI document is JSON");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["components"]["securitySchemes"] = json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (croft token create), as `Authorization: Bearer croft_...`."
        },
        "clientCertificate": {
            "type": "mutualTLS",
            "description": "A client certificate croftd trusts (croft trust add, then croft remote add)."
        }
    });
    doc["security"] = json!([{ "bearerAuth": [] }, { "clientCertificate": [] }]);
    for endpoint in table {
        let method = endpoint.method.as_str().to_ascii_lowercase();
        // An endpoint the annotations miss is left out; a test finds it.
        let Some(operation) = doc["paths"]
            .get_mut(endpoint.path)
            .and_then(|item| item.get_mut(&method))
        else {
            continue;
        };
        complete(operation, endpoint);
    }
    doc
}

/// Add to one operation what the route table knows of it.
fn complete(operation: &mut Value, endpoint: &Endpoint) {
    let action = endpoint.action;
    let roles: Vec<&str> = action.roles().iter().map(|r| r.as_str()).collect();
    // Handlers of different resources share names (`list`): the tag
    // (the resource) makes the id unique.
    if let (Some(tag), Some(id)) = (operation["tags"][0].as_str(), operation["operationId"].as_str()) {
        operation["operationId"] = json!(format!("{tag}_{id}"));
    }
    // (`get_mut`, not indexing: indexing a JSON object inserts what it
    // does not find.)
    if let Some(body) = operation.get_mut("requestBody") {
        binary_streams(body);
    }
    if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
        responses.values_mut().for_each(binary_streams);
    }
    operation["x-croft-action"] = json!(action.name());
    operation["x-croft-roles"] = json!(roles);
    let who = format!("Roles: {}.", roles.join(", "));
    operation["description"] = match operation["description"].as_str() {
        Some(text) if !text.is_empty() => json!(format!("{text}\n\n{who}")),
        _ => json!(who),
    };
    let mut parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
    for name in path_parameters(endpoint.path) {
        if !parameters.iter().any(|p| p["name"] == name && p["in"] == "path") {
            parameters.push(json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": { "type": "string" },
                "description": path_parameter_meaning(endpoint.path, name),
            }));
        }
    }
    if action.tenant_scoped() {
        parameters.push(json!({
            "name": "tenant",
            "in": "query",
            "required": false,
            "schema": { "type": "string" },
            "description": "The tenant to act in: the admin's way into a tenant (a tenant's own callers act in theirs; any other is 404).",
        }));
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    operation["responses"]["default"] = json!({
        "description": "An error: 4xx for what the caller got wrong (401 unauthenticated, 403 a role that may not, 404 not found or another tenant's, 409 the wrong state, 429 too many failed authentications), 5xx for croftd's own failures.",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
    });
    if action == crate::auth::Action::Enroll {
        // The one request of a caller not yet trusted: its certificate is
        // what it enrolls, the trust token's secret its proof.
        operation["security"] = json!([{ "clientCertificate": [] }]);
    }
}

/// A body of [`croft_api::STREAM_TYPE`] is bytes as they come (a tarball,
/// a send stream), not the array of numbers `Vec<u8>` reads as.
fn binary_streams(body: &mut Value) {
    if let Some(schema) = body
        .get_mut("content")
        .and_then(|content| content.get_mut(croft_api::STREAM_TYPE))
        .and_then(|media| media.get_mut("schema"))
    {
        *schema = json!({ "type": "string", "contentMediaType": croft_api::STREAM_TYPE });
    }
}

/// The `{names}` of a path template, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// What a path parameter names, by where it sits.
fn path_parameter_meaning(path: &str, name: &str) -> &'static str {
    match name {
        "snap" => "The snapshot's name.",
        "group" => "The security group's name.",
        "address" => "One of the VPS's additional addresses.",
        "protocol" => "tcp or udp.",
        "port" => "The host port.",
        "index" => "The rule's number, from 1, as listed.",
        "id" if path.starts_with("/1.0/jobs") => "The job's id.",
        "id" if path.starts_with("/1.0/tokens") => "The token's id (croft token list).",
        "id" => "A certificate's fingerprint or a trust token's id.",
        _ if path.starts_with("/1.0/instances") => "The VPS's name (unique in its tenant).",
        _ if path.starts_with("/1.0/firewall-groups") => "The security group's name.",
        _ if path.starts_with("/1.0/images") => "The image's name, `/` written as %2F.",
        _ if path.starts_with("/1.0/tenants") => "The tenant's name.",
        _ if path.starts_with("/1.0/plans") => "The plan's name.",
        _ if path.starts_with("/1.0/storage-pools") => "The storage pool's name.",
        _ if path.starts_with("/1.0/networks") => "The network's name.",
        _ => "What the path names.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_read_from_the_template() {
        let names: Vec<&str> = path_parameters("/1.0/instances/{name}/forwards/{protocol}/{port}").collect();
        assert_eq!(names, ["name", "protocol", "port"]);
        assert_eq!(path_parameters("/1.0/jobs").count(), 0);
    }
}
