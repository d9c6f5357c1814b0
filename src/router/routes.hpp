// Every route the router serves on its client listener, in one table (pure: no networking).
// Adding a vLLM route is one line in routes.cpp. docs/architecture.md ("The routes table").
//
//   kGenerate  proxied by model, chosen by the policy, predicted prefill + decode
//   kPooling   proxied by model, chosen by the policy, prefill only (no decode)
//   kUtility   proxied by model to any routable replica serving it, least in flight first,
//              without the policy or the ledger (cheap: tokenize, detokenize)
//   kStored    GET /v1/responses/{id}, POST /v1/responses/{id}/cancel: to the replica that
//              created that response (the router learns the id from the creating response)
//   kOwn       answered by the router itself (/v1/models, /health, /metrics, /version, /ping)
// Anything else gets vLLM's 404 (405 for a known path with another method).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "openai/extract.hpp"

namespace eta::router {

enum class RouteClass : uint8_t { kGenerate, kPooling, kUtility, kStored, kOwn };

enum class OwnRoute : uint8_t { kNone, kModels, kHealth, kMetrics, kVersion, kPing };

struct RouteSpec {
  std::string_view method;
  // Exact path, or one with a "{id}" segment (a non-empty segment without '/').
  std::string_view path;
  RouteClass cls;
  openai::Api api = openai::Api::kNone;  // how the body is read
  OwnRoute own = OwnRoute::kNone;
  // The route's name in access logs and metrics ("completions", "embeddings", ...).
  std::string_view name = {};
};

std::span<const RouteSpec> route_table();

struct RouteMatch {
  const RouteSpec* spec = nullptr;  // null: no route for this method and path
  std::string_view id;              // the {id} segment
  std::string allow;                // the path exists with these methods (405)
};
RouteMatch match_route(std::string_view method, std::string_view path);

// The class's name ("generate", "pooling", "utility", "stored", "own").
std::string_view to_string(RouteClass cls);

}  // namespace eta::router
