//! Stand-ins for the pages of each listing the API answers.

use crate::schema::UserId;

/// Stand-ins for [`Listing<T>`](crate::api::v1::Listing), one per item type:
/// utoipa copies a generic argument's schema into the generic one, so a
/// derived `Listing<User>` would hold a second, anonymous `User`.
///
/// A page allows no other fields (`deny_unknown_fields` here only shapes
/// the schema): `GET /v1/users` answers a page or `{items, missing}`, and
/// that `oneOf` must not match both.
macro_rules! page {
    ($(#[$doc:meta])* $page:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, ::utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $page {
            /// The items, in order.
            pub items: Vec<$item>,
            /// Pass as `after` for the next page; absent on the last page.
            #[schema(nullable = false)]
            pub next: Option<String>,
            /// How many items the whole listing holds (every page); absent
            /// where counting would read every item (a filtered listing).
            #[schema(nullable = false, minimum = 0)]
            pub count: Option<u64>,
        }
    };
}

pub(crate) use page;

page! {
    /// A page of users.
    UserPage of crate::store::User
}

page! {
    /// A page of groups.
    GroupPage of crate::store::Group
}

page! {
    /// A page of ids (of users, or of groups).
    IdPage of UserId
}

page! {
    /// A page of an import job's refused items.
    ItemResultPage of crate::store::ItemResult
}

page! {
    /// A page of import jobs.
    JobPage of crate::store::jobs::Job
}
