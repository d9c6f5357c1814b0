#include "router/routes.hpp"

#include <array>

namespace eta::router {

namespace {

using openai::Api;
using C = RouteClass;

// clang-format off
constexpr std::array kRoutes = {
    // generation
    RouteSpec{"POST", "/v1/completions",               C::kGenerate, Api::kCompletions,       OwnRoute::kNone, "completions"},
    RouteSpec{"POST", "/v1/chat/completions",          C::kGenerate, Api::kChat,              OwnRoute::kNone, "chat"},
    RouteSpec{"POST", "/v1/responses",                 C::kGenerate, Api::kResponses,         OwnRoute::kNone, "responses"},
    RouteSpec{"POST", "/v1/messages",                  C::kGenerate, Api::kMessages,          OwnRoute::kNone, "messages"},
    RouteSpec{"POST", "/v1/messages/count_tokens",     C::kPooling,  Api::kCountTokens,       OwnRoute::kNone, "count_tokens"},
    RouteSpec{"POST", "/v1/completions/render",        C::kPooling,  Api::kCompletionsRender, OwnRoute::kNone, "completions_render"},
    RouteSpec{"POST", "/v1/chat/completions/render",   C::kPooling,  Api::kChatRender,        OwnRoute::kNone, "chat_render"},
    RouteSpec{"POST", "/v1/audio/transcriptions",      C::kGenerate, Api::kAudio,             OwnRoute::kNone, "transcriptions"},
    RouteSpec{"POST", "/v1/audio/translations",        C::kGenerate, Api::kAudio,             OwnRoute::kNone, "translations"},
    // stored responses: the replica that created them
    RouteSpec{"GET",  "/v1/responses/{id}",            C::kStored,   Api::kNone,              OwnRoute::kNone, "responses_get"},
    RouteSpec{"POST", "/v1/responses/{id}/cancel",     C::kStored,   Api::kNone,              OwnRoute::kNone, "responses_cancel"},
    // pooling: prefill only
    RouteSpec{"POST", "/v1/embeddings",                C::kPooling,  Api::kEmbeddings,        OwnRoute::kNone, "embeddings"},
    RouteSpec{"POST", "/pooling",                      C::kPooling,  Api::kPooling,           OwnRoute::kNone, "pooling"},
    RouteSpec{"POST", "/classify",                     C::kPooling,  Api::kClassify,          OwnRoute::kNone, "classify"},
    RouteSpec{"POST", "/score",                        C::kPooling,  Api::kScore,             OwnRoute::kNone, "score"},
    RouteSpec{"POST", "/v1/score",                     C::kPooling,  Api::kScore,             OwnRoute::kNone, "score"},
    RouteSpec{"POST", "/rerank",                       C::kPooling,  Api::kRerank,            OwnRoute::kNone, "rerank"},
    RouteSpec{"POST", "/v1/rerank",                    C::kPooling,  Api::kRerank,            OwnRoute::kNone, "rerank"},
    RouteSpec{"POST", "/v2/rerank",                    C::kPooling,  Api::kRerank,            OwnRoute::kNone, "rerank"},
    // cheap utilities
    RouteSpec{"POST", "/tokenize",                     C::kUtility,  Api::kTokenize,          OwnRoute::kNone, "tokenize"},
    RouteSpec{"POST", "/detokenize",                   C::kUtility,  Api::kDetokenize,        OwnRoute::kNone, "detokenize"},
    // the router's own
    RouteSpec{"GET",  "/v1/models",                    C::kOwn,      Api::kNone,              OwnRoute::kModels,  "models"},
    RouteSpec{"GET",  "/health",                       C::kOwn,      Api::kNone,              OwnRoute::kHealth,  "health"},
    RouteSpec{"GET",  "/metrics",                      C::kOwn,      Api::kNone,              OwnRoute::kMetrics, "metrics"},
    RouteSpec{"GET",  "/version",                      C::kOwn,      Api::kNone,              OwnRoute::kVersion, "version"},
    RouteSpec{"GET",  "/ping",                         C::kOwn,      Api::kNone,              OwnRoute::kPing,    "ping"},
    RouteSpec{"POST", "/ping",                         C::kOwn,      Api::kNone,              OwnRoute::kPing,    "ping"},
};
// clang-format on

// Matches `path` against a pattern with at most one "{id}" segment; sets `id`.
bool path_matches(std::string_view pattern, std::string_view path, std::string_view& id) {
  const size_t brace = pattern.find("{id}");
  if (brace == std::string_view::npos) return pattern == path;
  const std::string_view prefix = pattern.substr(0, brace);
  const std::string_view suffix = pattern.substr(brace + 4);
  if (path.size() <= prefix.size() + suffix.size()) return false;
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (path.substr(path.size() - suffix.size()) != suffix) return false;
  const std::string_view seg =
      path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  if (seg.empty() || seg.find('/') != std::string_view::npos) return false;
  id = seg;
  return true;
}

}  // namespace

std::span<const RouteSpec> route_table() {
  return kRoutes;
}

RouteMatch match_route(std::string_view method, std::string_view path) {
  RouteMatch m;
  for (const RouteSpec& r : kRoutes) {
    std::string_view id;
    if (!path_matches(r.path, path, id)) continue;
    if (r.method == method) {
      m.spec = &r;
      m.id = id;
      m.allow.clear();
      return m;
    }
    if (m.allow.find(r.method) == std::string::npos) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += r.method;
    }
  }
  return m;
}

std::string_view to_string(RouteClass cls) {
  switch (cls) {
    case RouteClass::kGenerate:
      return "generate";
    case RouteClass::kPooling:
      return "pooling";
    case RouteClass::kUtility:
      return "utility";
    case RouteClass::kStored:
      return "stored";
    case RouteClass::kOwn:
      return "own";
  }
  return "unknown";
}

}  // namespace eta::router
