//! OmniStack's `GET`/`PATCH /api/v1/app/users/me`: the caller's own profile.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::users::{AvatarUrl, Phone, TimeZoneName, User, UserPatch, UserView};
use quper_core::model::Name;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, Version};

/// The user with OmniStack's subscription fields (`subscription_plan`,
/// `subscription_status`); under v2 also the computed `is_premium` and
/// `days_since_joined`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Profile {
    #[serde(flatten)]
    user: UserView,
}

/// The view of `user` for the request's version.
fn profile(app: &App, version: Version, user: &User) -> Profile {
    let user = if version.is_v2() {
        UserView::computed(user, app.now())
    } else {
        UserView::from(user)
    };
    Profile { user }
}

/// What a user may change about themselves.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    full_name: Option<Name>,
    avatar_url: Option<AvatarUrl>,
    phone: Option<Phone>,
    timezone: Option<TimeZoneName>,
}

pub async fn get(State(app): State<App>, version: Version, Caller(caller): Caller) -> ApiResult<Json<Profile>> {
    let user = app.own_profile(&caller).await?;
    Ok(Json(profile(&app, version, &user)))
}

pub async fn update(
    State(app): State<App>,
    version: Version,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ProfilePatch>,
) -> ApiResult<Json<Profile>> {
    let patch = UserPatch {
        full_name: body.full_name,
        avatar_url: body.avatar_url,
        phone: body.phone,
        timezone: body.timezone,
        ..UserPatch::default()
    };
    let user = app.update_own_profile(&caller, patch).await?;
    Ok(Json(profile(&app, version, &user)))
}
