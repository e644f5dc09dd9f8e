//! OmniStack's `GET`/`PATCH /api/v1/app/users/me`: the caller's own profile.

use axum::Json;
use axum::extract::State;
use quper_core::App;
use quper_core::identity::users::{AvatarUrl, Phone, TimeZoneName, UserPatch, UserView};
use quper_core::model::Name;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;

/// The user, plus OmniStack's subscription fields (billing is not part of
/// this deployment yet, so they are null).
#[derive(Serialize, schemars::JsonSchema)]
pub struct Profile {
    #[serde(flatten)]
    user: UserView,
    subscription_plan: Option<String>,
    subscription_status: Option<String>,
}

impl From<UserView> for Profile {
    fn from(user: UserView) -> Self {
        Profile {
            user,
            subscription_plan: None,
            subscription_status: None,
        }
    }
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

pub async fn get(State(app): State<App>, Caller(caller): Caller) -> ApiResult<Json<Profile>> {
    let user = app.own_profile(&caller).await?;
    Ok(Json(UserView::from(&user).into()))
}

pub async fn update(
    State(app): State<App>,
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
    Ok(Json(UserView::from(&user).into()))
}
