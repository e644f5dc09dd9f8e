//! Lambda function: the docs route group: the OpenAPI document of every
//! route (`/openapi.json`), Swagger UI (`/docs`) and ReDoc (`/redoc`).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_routes(quper_http::routes::docs::router).await
}
