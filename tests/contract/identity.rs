//! Organizations and keys: the Local provider's one organization holding every key, a
//! remote provider's own (through the reference provider), and nobody reaching another
//! user's.

use crate::harness::TestServer;

const VIEW_WORKSPACE: &str = "bc9379e8-dc18-4655-b53c-c641271c4ba3";
const CREATE_WORKSPACE: &str = "eb42ac41-a883-465e-843c-d64e962a3a0e";

#[tokio::test]
async fn the_local_provider_has_one_organization_with_every_key() {
    let server = TestServer::start().await;
    let client = server.client();
    let orgs = client.get_orgs().send().await.unwrap().into_inner();
    assert_eq!(orgs.total_count, 1);
    let org = orgs.organizations[0].clone();
    assert_eq!(org.name, "My Org");
    assert!(uuid::Uuid::parse_str(&org.id).is_ok(), "{}", org.id);
    // The same organization every time (kept in the database).
    let again = client
        .get_orgs()
        .all(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.organizations[0].id, org.id);
    let none = client
        .get_orgs()
        .search("nope")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.total_count, 0);
    assert_eq!(
        client
            .get_org()
            .org_id(org.id.as_str())
            .send()
            .await
            .unwrap()
            .into_inner()
            .name,
        "My Org"
    );
    let other = uuid::Uuid::new_v4().to_string();
    match client.get_org().org_id(other.as_str()).send().await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => assert_eq!(e.status(), 404),
        r => panic!("{r:?}"),
    }

    // Every key, unpaged unless a page size is asked for (Meshery's UI asks none).
    let keys = client
        .get_user_keys()
        .org_id(org.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.total_count, 94);
    assert_eq!(keys.keys.len(), 94);
    let view = keys.keys.iter().find(|k| k.id == VIEW_WORKSPACE).unwrap();
    assert_eq!(view.function, "View Workspace");
    assert_eq!(view.owner, org.id);
    let second = client
        .get_user_keys()
        .org_id(org.id.as_str())
        .page(1)
        .pagesize("10")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!((second.page, second.keys.len()), (1, 10));
    assert_eq!(second.keys[0].id, keys.keys[10].id);
    match client.get_user_keys().org_id(other.as_str()).send().await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => assert_eq!(e.status(), 404),
        r => panic!("{r:?}"),
    }
    server.finish().await;
}

#[tokio::test]
async fn a_remote_provider_s_organizations_and_keys_are_its_own() {
    let s = crate::auth::setup().await;
    let (alice, root) = (s.client_as("alice"), s.client_as("root"));
    let orgs = |c: meshery_client::rest::Client| async move {
        c.get_orgs()
            .send()
            .await
            .unwrap()
            .into_inner()
            .organizations
    };
    let alices = orgs(alice.clone()).await;
    let mut names: Vec<&str> = alices.iter().map(|o| o.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Reference", "alice's team"]);
    let own = alices.iter().find(|o| o.name == "alice's team").unwrap();
    let shared = alices.iter().find(|o| o.name == "Reference").unwrap();
    let bobs = orgs(s.client_as("bob")).await;
    let bob_own = bobs.iter().find(|o| o.name == "bob's team").unwrap();

    // The provider's keys, read from its snake_case answer.
    let keys = |c: meshery_client::rest::Client, org: String| async move {
        c.get_user_keys()
            .org_id(org.as_str())
            .send()
            .await
            .map(|k| {
                k.into_inner()
                    .keys
                    .into_iter()
                    .map(|k| k.id)
                    .collect::<Vec<_>>()
            })
    };
    let alice_own = keys(alice.clone(), own.id.clone()).await.unwrap();
    assert_eq!(alice_own.len(), 36, "{alice_own:?}");
    assert!(alice_own.contains(&CREATE_WORKSPACE.to_string()));
    let alice_shared = keys(alice.clone(), shared.id.clone()).await.unwrap();
    assert_eq!(alice_shared.len(), 9, "{alice_shared:?}");
    assert!(alice_shared.contains(&VIEW_WORKSPACE.to_string()));
    assert!(!alice_shared.contains(&CREATE_WORKSPACE.to_string()));
    assert_eq!(
        keys(root.clone(), shared.id.clone()).await.unwrap().len(),
        36
    );
    // Nobody reaches an organization they are not in.
    for r in [
        keys(alice.clone(), bob_own.id.clone()).await.map(|_| ()),
        alice
            .get_org()
            .org_id(bob_own.id.as_str())
            .send()
            .await
            .map(|_| ()),
    ] {
        match r {
            Err(meshery_client::rest::Error::ErrorResponse(e)) => assert_eq!(e.status(), 404),
            other => panic!("{other:?}"),
        }
    }
    s.finish().await;
}
