//! The checked-in document is what the code generates, it documents every
//! route of `v1::router()` (and nothing else), and the stand-ins in
//! [`schemas`](crate::api::v1::schemas) have the fields of the types they stand in for.

use std::collections::BTreeSet;

use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::{OpenApi, PartialSchema};

use super::{ApiDoc, document};

const REGENERATE: &str = "TOKENIM_WRITE_OPENAPI=1 cargo nextest run -p tokenim-gateway openapi";

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

#[test]
fn openapi_json_is_current() {
    let generated = document();
    if std::env::var_os("TOKENIM_WRITE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &generated).expect("docs/openapi.json is writable");
        return;
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    if checked_in != generated {
        let (line, (old, new)) = checked_in
            .lines()
            .chain(std::iter::repeat("<end of file>"))
            .zip(generated.lines().chain(std::iter::repeat("<end of file>")))
            .enumerate()
            .find(|(_, (old, new))| old != new)
            .unwrap_or((0, ("", "")));
        panic!(
            "docs/openapi.json is not the document the code generates (first difference at \
             line {}:\n  checked in: {old}\n  generated:  {new}\n). Regenerate it with\n\n    \
             {REGENERATE}\n\nand commit it.",
            line + 1
        );
    }
    assert!(
        super::super::OPENAPI == generated,
        "GET /v1/openapi.json serves a stale copy of docs/openapi.json: rebuild"
    );
}

/// `(METHOD, path)` of every route in `v1::router()`, read from its source.
fn routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../mod.rs");
    let (_, body) = source
        .split_once("pub fn router(")
        .expect("v1/mod.rs defines `pub fn router(..)`");
    let body = &body[..body.find("\n}\n").expect("router() ends with `}`")];
    let mut routes = BTreeSet::new();
    for call in body.split(".route(").skip(1) {
        let mut parts = call.splitn(3, '"');
        let path = parts.nth(1).expect("a route's path is its first argument");
        let handlers = parts.next().unwrap_or_default();
        for method in ["get", "post", "put", "delete", "patch"] {
            for (at, _) in handlers.match_indices(&format!("{method}(")) {
                let before = handlers[..at].chars().next_back();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    routes.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    routes
}

/// Every operation of the document with its method and path.
fn operations() -> Vec<(String, String, Operation)> {
    let doc = ApiDoc::openapi();
    let mut all = Vec::new();
    for (path, item) in doc.paths.paths {
        let methods = [
            ("GET", item.get),
            ("POST", item.post),
            ("PUT", item.put),
            ("DELETE", item.delete),
            ("PATCH", item.patch),
            ("HEAD", item.head),
            ("OPTIONS", item.options),
            ("TRACE", item.trace),
        ];
        for (method, operation) in methods {
            if let Some(operation) = operation {
                all.push((method.to_owned(), path.clone(), operation));
            }
        }
    }
    all
}

#[test]
fn openapi_documents_every_route() {
    let routes = routes();
    assert!(routes.len() > 30, "only {} routes parsed", routes.len());
    let documented: BTreeSet<_> = operations()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes without an operation in the document: {undocumented:?}; operations without a \
         route in v1::router(): {unrouted:?}. Annotate the handler with #[utoipa::path], list \
         it in ApiDoc's paths(...), then regenerate with `{REGENERATE}`"
    );
}

#[test]
fn openapi_operations_are_unique_tagged_and_name_their_scope() {
    let scopes = tokenim_auth::Scope::ALL.map(|s| format!("`{}`", s.as_str()));
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations() {
        let id = op.operation_id.clone().unwrap_or_default();
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operation id {id:?} is taken"
        );
        assert!(
            op.tags.as_ref().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
        assert!(op.summary.is_some(), "{method} {path} has no summary");
        if path == "/v1/openapi.json" {
            assert!(op.security.is_none(), "the document is public");
            continue;
        }
        assert!(op.security.is_some(), "{method} {path} names no security");
        let description = op.description.unwrap_or_default();
        assert!(
            description.starts_with("Scope: ") && scopes.iter().any(|s| description.contains(s)),
            "{method} {path}: the description should start with `Scope: ` and name the scope \
             the handler requires; it is {description:?}"
        );
    }
}

#[test]
fn openapi_description_lists_every_scope() {
    for scope in tokenim_auth::Scope::ALL {
        let row = format!("| `{}` |", scope.as_str());
        assert!(
            super::DESCRIPTION.contains(&row),
            "the document's description has no row for scope {scope:?}"
        );
    }
}

/// The property names of a stand-in's schema.
fn properties<T: PartialSchema>() -> BTreeSet<String> {
    let schema = serde_json::to_value(T::schema()).expect("schemas serialize");
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The field names of a value as serialized.
fn fields(value: impl serde::Serialize) -> BTreeSet<String> {
    match serde_json::to_value(value).expect("values serialize") {
        Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("{other} is not an object"),
    }
}

#[test]
fn openapi_stand_ins_have_the_fields_of_the_real_types() {
    use tokenim_auth as auth;
    use tokenim_protocol::{ErrorBody, ErrorCode, UserId};

    let role = auth::Role {
        name: auth::RoleName::new("mod").unwrap(),
        permissions: [auth::Permission::Publish].into(),
    };
    assert_eq!(fields(&role), properties::<crate::schema::Role>());

    let grant = auth::Grant {
        subject: auth::Subject::User(UserId::new("alice").unwrap()),
        permission: auth::Permission::Publish,
        channels: Some("rooms.*".parse().unwrap()),
    };
    assert_eq!(fields(&grant), properties::<crate::schema::Grant>());

    let mut record =
        auth::AuditRecord::new(1, "ak_0123456789abcdef", auth::AuditAction::KeyCreated, "x");
    record.source = Some("127.0.0.1".into());
    record.detail = serde_json::json!({ "why": "test" });
    assert_eq!(
        fields(&record),
        properties::<crate::api::v1::schemas::AuditRecord>()
    );

    let error = ErrorBody::new(ErrorCode::NotFound, "gone");
    assert_eq!(
        fields(&error),
        properties::<crate::api::v1::schemas::ErrorBody>()
    );

    let page = super::super::Listing::new(vec![1, 2], 2, ToString::to_string).counted(2);
    assert_eq!(
        fields(&page),
        properties::<crate::api::v1::schemas::UserPage>()
    );

    use crate::import::{GroupInput, RecordInput, UserInput};
    let columns = |c: [&str; 5]| c.map(str::to_owned).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(
        columns(UserInput::COLUMNS),
        properties::<crate::api::v1::schemas::UserInput>()
    );
    assert_eq!(
        columns(GroupInput::COLUMNS),
        properties::<crate::api::v1::schemas::GroupInput>()
    );
}
