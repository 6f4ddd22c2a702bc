// The client turns every failure into the safe default so that a serving stage never waits on,
// or fails because of, the allocator.
#include "client/allot_client.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace allot {

namespace {

std::string ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(std::string(flag) + ": cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, const ClientTls& tls,
                                           grpc::ChannelArguments args) {
  if (tls.ca_file.empty())
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadPem(tls.ca_file, "ca_file");
  if (!tls.cert_file.empty()) ssl.pem_cert_chain = ReadPem(tls.cert_file, "cert_file");
  if (!tls.key_file.empty()) ssl.pem_private_key = ReadPem(tls.key_file, "key_file");
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

RequestBuilder::RequestBuilder(std::string agent, const std::map<std::string, int>* feature_index,
                               size_t width)
    : feature_index_(feature_index) {
  request_.set_agent(std::move(agent));
  request_.mutable_features()->Resize(static_cast<int>(width), 0.0f);
}

RequestBuilder& RequestBuilder::Set(const std::string& feature, float value) {
  auto it = feature_index_->find(feature);
  if (it == feature_index_->end()) {
    throw std::invalid_argument("agent '" + request_.agent() + "' has no feature '" + feature +
                                "'");
  }
  request_.set_features(it->second, value);
  return *this;
}

RequestBuilder& RequestBuilder::RequestId(std::string id) {
  request_.set_request_id(std::move(id));
  return *this;
}

RequestBuilder& RequestBuilder::UserId(std::string id) {
  request_.set_user_id(std::move(id));
  return *this;
}

RequestBuilder& RequestBuilder::Cache(v1::Stage stage, double age_seconds, uint32_t size) {
  v1::StageCache* c = request_.add_cache();
  c->set_stage(stage);
  c->set_present(true);
  c->set_age_seconds(age_seconds);
  c->set_size(size);
  return *this;
}

RequestBuilder& RequestBuilder::Behavior(uint64_t item_id) {
  request_.add_behavior_ids(item_id);
  return *this;
}

AllotClient::AllotClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : stub_(v1::Allocator::NewStub(std::move(channel))), options_(options) {}

grpc::Status AllotClient::LoadSchema() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.control_timeout);
  v1::ControlState state;
  grpc::Status status = stub_->GetControlState(&context, v1::GetControlStateRequest(), &state);
  if (!status.ok()) return status;
  schema_ = std::move(state);
  feature_index_.clear();
  for (const v1::AgentSchema& agent : schema_.agents()) {
    auto& index = feature_index_[agent.name()];
    for (int i = 0; i < agent.features_size(); ++i) index[agent.features(i)] = i;
  }
  return status;
}

RequestBuilder AllotClient::NewRequest(const std::string& agent) const {
  auto it = feature_index_.find(agent);
  if (it == feature_index_.end()) {
    throw std::invalid_argument("unknown agent '" + agent + "' (call LoadSchema first)");
  }
  return RequestBuilder(agent, &it->second, it->second.size());
}

v1::AllocateResponse AllotClient::SafeDefault(const std::string& agent,
                                              const std::string& reason) const {
  v1::AllocateResponse response;
  response.set_agent(agent);
  response.set_fallback(true);
  response.set_fallback_reason(reason);
  for (const v1::AgentSchema& a : schema_.agents()) {
    if (a.name() != agent) continue;
    for (const v1::DecisionSchema& d : a.decisions()) {
      v1::Decision* out = response.add_decisions();
      out->set_name(d.name());
      out->set_kind(d.kind());
      for (const std::string& s : d.safe_default()) out->add_selected(s);
      if (d.kind() == v1::ACTION_KIND_QUEUE && d.safe_default_size() == 1) {
        out->set_queue_length(std::stoi(d.safe_default(0)));
      }
      if (d.kind() == v1::ACTION_KIND_SWITCH && d.safe_default_size() == 1) {
        out->set_switch_on(d.safe_default(0) == "on");
      }
    }
  }
  return response;
}

AllocationResult AllotClient::Allocate(const v1::AllocateRequest& request) const {
  AllocationResult result;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.allocate_timeout);
  result.status = stub_->Allocate(&context, request, &result.response);
  result.from_server = result.status.ok();
  if (!result.from_server) {
    result.response = SafeDefault(request.agent(), "client: " + result.status.error_message());
    result.response.set_request_id(request.request_id());
  }
  return result;
}

void AllotClient::AllocateAsync(const v1::AllocateRequest& request,
                                std::function<void(AllocationResult)> done) const {
  struct Call {
    grpc::ClientContext context;
    v1::AllocateRequest request;  // owned here: it must outlive the call
    v1::AllocateResponse response;
    std::function<void(AllocationResult)> done;
  };
  auto* call = new Call;
  call->request = request;
  call->done = std::move(done);
  call->context.set_deadline(std::chrono::system_clock::now() + options_.allocate_timeout);
  stub_->async()->Allocate(
      &call->context, &call->request, &call->response, [this, call](grpc::Status status) {
        AllocationResult result;
        result.status = status;
        result.from_server = status.ok();
        if (status.ok()) {
          result.response = std::move(call->response);
        } else {
          result.response = SafeDefault(call->request.agent(), "client: " + status.error_message());
          result.response.set_request_id(call->request.request_id());
        }
        auto callback = std::move(call->done);
        delete call;
        callback(std::move(result));
      });
}

grpc::Status AllotClient::ReportLoad(const v1::LoadReport& report) const {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.control_timeout);
  v1::ReportLoadResponse response;
  return stub_->ReportLoad(&context, report, &response);
}

}  // namespace allot
