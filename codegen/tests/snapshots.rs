//! Snapshot tests of the generated code for a small fixture spec and SDL, and the
//! generator's errors. `BLESS=1 cargo test -p meshery-codegen` rewrites the snapshots.

use std::path::Path;

const SPEC: &str = include_str!("fixtures/petstore.yaml");
const SDL: &str = include_str!("fixtures/small.graphql");

fn generate(spec: &str, sdl: &str) -> Result<meshery_codegen::Generated, meshery_codegen::Error> {
    meshery_codegen::generate("petstore.yaml", spec, "small.graphql", sdl)
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "generated {name} differs from tests/snapshots/{name}; inspect the change, then BLESS=1 cargo test -p meshery-codegen"
    );
}

#[test]
fn generated_code_matches_snapshots() {
    let g = generate(SPEC, SDL).unwrap();
    check_snapshot("models.rs.txt", &g.models);
    check_snapshot("client.rs.txt", &g.client);
    check_snapshot("server.rs.txt", &g.server);
    check_snapshot("graphql.rs.txt", &g.graphql);
    check_snapshot("rest.md", &g.rest_md);
    check_snapshot("graphql.md", &g.graphql_md);
}

#[test]
fn output_is_deterministic() {
    let a = generate(SPEC, SDL).unwrap();
    let b = generate(SPEC, SDL).unwrap();
    assert_eq!(a.models, b.models);
    assert_eq!(a.client, b.client);
    assert_eq!(a.server, b.server);
    assert_eq!(a.graphql, b.graphql);
    assert_eq!(a.rest_md, b.rest_md);
    assert_eq!(a.graphql_md, b.graphql_md);
    assert!(a.server.starts_with(meshery_codegen::PREAMBLE));
}

#[test]
fn server_code_has_a_trait_per_tag_and_a_variant_per_status() {
    let g = generate(SPEC, SDL).unwrap();
    assert!(g.server.contains("pub trait PetsApi: Hooks"));
    assert!(g.server.contains("pub trait SystemApi: Hooks"));
    for variant in ["Created {", "NoContent,", "NotFound(", "PayloadTooLarge("] {
        assert!(g.server.contains(variant), "no {variant}");
    }
    // Keywords become raw identifiers in GraphQL types.
    assert!(
        g.graphql
            .contains("pub r#type: ::std::option::Option<::std::string::String>")
    );
}

/// Each broken spec fails with a message naming the file, the operation and the rule.
#[test]
fn spec_errors_name_the_file_and_operation() {
    let cases = [
        (SPEC.replace("openapi: 3.0.3", "openapi: 3.1.0"), "3.0.x"),
        (SPEC.replace("      operationId: deletePet\n", ""), "DELETE /pets/{petId}: has no operationId"),
        (
            SPEC.replace("        \"404\": { $ref: \"#/components/responses/Error\" }\n", "        default: { $ref: \"#/components/responses/Error\" }\n"),
            "(deletePet): declares a `default` response",
        ),
        (
            SPEC.replace("in: header", "in: cookie"),
            "(listPets): parameter x-trace is a cookie parameter",
        ),
        (
            SPEC.replace("        \"415\": { $ref: \"#/components/responses/Error\" }\n", ""),
            "(createPet): must declare response 415",
        ),
        (
            SPEC.replace("      description: Removes a pet.\n", ""),
            "(deletePet): has no description",
        ),
        (
            SPEC.replace("          application/json:\n            schema: { $ref: \"#/components/schemas/NewPet\" }", "          multipart/form-data:\n            schema: { $ref: \"#/components/schemas/NewPet\" }"),
            "multipart bodies are not supported",
        ),
        (
            SPEC.replace("      x-page: pets\n", ""),
            "(pagePets): takes `page` but does not answer a page envelope",
        ),
        (
            SPEC.replace("        - { name: pageSize, in: query, required: false, schema: { type: string }, description: Size. }\n", ""),
            "(pagePets): answers a page envelope but has no `pageSize` parameter",
        ),
        (
            SPEC.replace("required: [page, pageSize, totalCount, pets]", "required: [page, pageSize, pets]"),
            "components/schemas/PetPage: x-page schema must require `totalCount`",
        ),
        (
            SPEC.replace("required: [page, pageSize, totalCount, pets]", "required: [page, pageSize, totalCount, pets, note]"),
            "components/schemas/PetPage: x-page schema: `note` must be optional",
        ),
        (
            SPEC.replace(
                "            image/jpeg: { schema: { type: string, format: binary } }",
                "            application/json: { schema: { type: string } }",
            ),
            "(getPetPhoto): response 200 has several content types: each must be a file",
        ),
        (
            SPEC.replace("        \"403\": { $ref: \"#/components/responses/Error\" }\n", ""),
            "(deletePet): must declare response 403: the operation needs a key (x-key)",
        ),
        (
            SPEC.replace(", function: \"Delete a pet\"", ""),
            "(deletePet): x-key must be {id, function}",
        ),
        (
            SPEC.replace("/animals/{petId}", "/animals/{id}"),
            "(deletePet): alias /animals/{id} must have the same path parameters as /pets/{petId}",
        ),
    ];
    for (spec, expected) in cases {
        let err = generate(&spec, SDL).expect_err(expected).to_string();
        assert!(err.starts_with("petstore.yaml"), "{err}");
        assert!(
            err.contains(expected),
            "{err:?} does not mention {expected:?}"
        );
    }
}

#[test]
fn sdl_errors_name_the_file_and_place() {
    let with_default = SDL.replace("limit: Int", "limit: Int = 3");
    let err = generate(SPEC, &with_default).unwrap_err().to_string();
    assert!(err.starts_with("small.graphql: Query.pets"), "{err}");
    for (sdl, expected) in [
        (
            SDL.replace("limit: Int", "limit: Integer"),
            "Query.pets.limit: type Integer is not defined",
        ),
        (
            SDL.replace("limit: Int", "limit: Int @deprecated"),
            "Query.pets.limit: directive @deprecated is not supported",
        ),
        (
            format!("{SDL}\ndirective @auth on FIELD_DEFINITION\n"),
            "@auth: directive definitions are not supported",
        ),
        (
            SDL.replace("owner_id: String!", "owner_id: String"),
            "Pet.owner_id: spells Pet.ownerId another way, so it must have its type",
        ),
    ] {
        let err = generate(SPEC, &sdl).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} does not mention {expected:?}"
        );
    }
    let bad = generate(SPEC, "type Query {").unwrap_err().to_string();
    assert!(
        bad.starts_with("small.graphql") && bad.contains("is not valid SDL"),
        "{bad}"
    );
}
