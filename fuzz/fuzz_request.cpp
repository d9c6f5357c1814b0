// libFuzzer harness: the OpenAI request-field extractor (openai::parse_request,
// parse_tokenize_request) and the error body it produces; the router's lenient extractor
// (openai::extract_request, find_member) on every route's body shape.
// Properties: never crashes or throws; a failure is a 4xx with a message; every error body is
// valid JSON in valid UTF-8 with the nested {"error":{message,type,param,code}} shape, even when
// the message quotes bytes of the (hostile) request.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "openai/extract.hpp"
#include "openai/request.hpp"

namespace {

void check_error(const eta::openai::Error& e) {
  if (e.status < 400 || e.status > 499 || e.message.empty() || e.type.empty()) std::abort();
  const std::string body = eta::openai::error_body(e);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);  // rejects invalid UTF-8
  if (ec || !v.is_object()) std::abort();
  const boost::json::object* inner = v.as_object().if_contains("error")->if_object();
  if (inner == nullptr || !inner->at("message").is_string() ||
      inner->at("code").as_int64() != e.status) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (auto endpoint : {eta::openai::Endpoint::kCompletions, eta::openai::Endpoint::kChat}) {
    eta::openai::RequestFields fields;
    eta::openai::Error error;
    if (!eta::openai::parse_request(endpoint, body, fields, error)) {
      check_error(error);
    } else if (fields.max_tokens && *fields.max_tokens < 1) {
      std::abort();
    }
  }
  eta::openai::RequestFields fields;
  eta::openai::Error error;
  if (!eta::openai::parse_tokenize_request(body, fields, error)) check_error(error);
  // Never refuses, never crashes; counts stay in range.
  for (int api = 0; api <= static_cast<int>(eta::openai::Api::kAudio); ++api) {
    eta::openai::ExtractedRequest r;
    eta::openai::extract_request(static_cast<eta::openai::Api>(api), body,
                                 "multipart/form-data; boundary=b", {}, r);
    if (r.n < 1 || r.prompts < 1 || r.extra_prompt_tokens < 0) std::abort();
  }
  if (const auto m = eta::openai::find_member(body, "usage")) {
    if (m->value_begin > m->value_end || m->value_end > body.size() ||
        m->member_begin > m->member_end || m->member_end > body.size())
      std::abort();
  }
  return 0;
}
