// libcurl for the HTTP GET, nlohmann::json for the answer; every failure names the query.
#include "server/prometheus_source.h"

#include <curl/curl.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace allot {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string UrlEncode(CURL* curl, const std::string& text) {
  std::unique_ptr<char, decltype(&curl_free)> encoded(
      curl_easy_escape(curl, text.c_str(), static_cast<int>(text.size())), curl_free);
  return encoded ? std::string(encoded.get()) : std::string();
}

}  // namespace

PromSample ParsePrometheusInstant(const std::string& body) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("answer is not JSON: ") + e.what());
  }
  if (doc.value("status", "") != "success") {
    throw std::runtime_error("query failed: " +
                             doc.value("error", std::string("status is not success")));
  }
  const auto& data = doc.at("data");
  const std::string type = data.value("resultType", "");
  nlohmann::json pair;
  if (type == "scalar") {
    pair = data.at("result");
  } else if (type == "vector") {
    const auto& result = data.at("result");
    if (result.size() != 1) {
      throw std::runtime_error("expected exactly one series, got " + std::to_string(result.size()));
    }
    pair = result[0].at("value");
  } else {
    throw std::runtime_error("unsupported result type '" + type + "'");
  }
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_string()) {
    throw std::runtime_error("malformed sample");
  }
  PromSample out;
  const std::string text = pair[1].get<std::string>();
  try {
    size_t used = 0;
    out.value = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
  } catch (const std::logic_error&) {
    throw std::runtime_error("sample value '" + text + "' is not a number");
  }
  if (!std::isfinite(out.value)) throw std::runtime_error("sample value is " + text);
  out.timestamp_ms = static_cast<int64_t>(pair[0].get<double>() * 1000.0);
  return out;
}

PrometheusSource::PrometheusSource(const AllotConfig& config)
    : url_(config.telemetry.prometheus.url),
      timeout_ms_(static_cast<long>(config.telemetry.prometheus.query_timeout_s * 1000)),
      config_(config) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

PromSample PrometheusSource::Query(const std::string& promql) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw std::runtime_error("cannot create an HTTP client");
  const std::string url = url_ + "/api/v1/query?query=" + UrlEncode(curl.get(), promql);
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms_);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK)
    throw std::runtime_error(std::string("HTTP request failed: ") + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    throw std::runtime_error("HTTP status " + std::to_string(status) + ": " + body.substr(0, 200));
  }
  return ParsePrometheusInstant(body);
}

std::optional<LoadSample> PrometheusSource::Latest(const std::string& module, std::string* error) {
  const int index = config_.ModuleIndex(module);
  if (index < 0) return std::nullopt;
  const ModuleConfig& m = config_.modules[index];
  std::string stage = "cpu_query";
  try {
    LoadSample sample;
    const PromSample cpu = Query(m.cpu_query);
    if (cpu.value < 0 || cpu.value > 1) {
      throw std::runtime_error("CPU utilisation " + std::to_string(cpu.value) +
                               " is outside [0, 1]");
    }
    sample.cpu_utilization = cpu.value;
    sample.timestamp_ms = cpu.timestamp_ms;
    if (!m.qps_query.empty()) {
      stage = "qps_query";
      const PromSample qps = Query(m.qps_query);
      if (qps.value < 0)
        throw std::runtime_error("QPS " + std::to_string(qps.value) + " is negative");
      sample.qps = qps.value;
    }
    return sample;
  } catch (const std::exception& e) {
    if (error)
      *error = "modules[" + std::to_string(index) + "]." + stage + " (" + module + "): " + e.what();
    return std::nullopt;
  }
}

std::optional<double> PrometheusSource::ClusterPrice(const std::string& module,
                                                     std::string* error) {
  const int index = config_.ModuleIndex(module);
  if (index < 0 || config_.modules[index].price_query.empty()) return std::nullopt;
  try {
    const PromSample price = Query(config_.modules[index].price_query);
    if (!std::isfinite(price.value) || price.value < 0)
      throw std::runtime_error("price " + std::to_string(price.value) + " is not a price");
    return price.value;
  } catch (const std::exception& e) {
    if (error)
      *error = "modules[" + std::to_string(index) + "].price_query (" + module + "): " + e.what();
    return std::nullopt;
  }
}

}  // namespace allot
