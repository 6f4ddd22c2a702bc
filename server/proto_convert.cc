// Renders joint action indices as named decisions; see action_space.h for the encoding.
#include "server/proto_convert.h"

namespace allot {

v1::ActionKind ToProto(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kLink:
      return v1::ACTION_KIND_LINK;
    case DecisionKind::kSwitch:
      return v1::ACTION_KIND_SWITCH;
    case DecisionKind::kQueue:
      return v1::ACTION_KIND_QUEUE;
  }
  return v1::ACTION_KIND_UNSPECIFIED;
}

void FillAllocateResponse(const Allocation& a, v1::AllocateResponse* response) {
  const PolicySnapshot& policy = *a.policy;
  const AgentConfig& agent = policy.config->agents[a.agent];
  const ActionSpace& space = policy.spaces[a.agent];
  response->set_agent(agent.name);
  for (size_t d = 0; d < agent.decisions.size(); ++d) {
    const DecisionConfig& decision = agent.decisions[d];
    const uint32_t choice = space.Choice(a.joint, d);
    v1::Decision* out = response->add_decisions();
    out->set_name(decision.name);
    out->set_kind(ToProto(decision.kind));
    ForEachSelected(decision.kind, choice, static_cast<uint32_t>(decision.options.size()),
                    [&](uint32_t i) { out->add_selected(decision.options[i].label); });
    if (decision.kind == DecisionKind::kSwitch) out->set_switch_on(choice == 1);
    if (decision.kind == DecisionKind::kQueue)
      out->set_queue_length(decision.options[choice].queue_length);
  }
  response->set_cache_reuse(static_cast<v1::CacheReuse>(a.cache.reuse));
  response->set_compute_price(a.lambda);
  response->set_bundle_version(policy.scorer->version());
  response->set_predicted_value(a.value);
  response->set_predicted_cost(a.cost);
  response->set_fallback(a.fallback);
  response->set_fallback_reason(a.fallback_reason);
  response->set_value_bucket(static_cast<uint32_t>(a.value_bucket));
  response->set_user_value(a.user_value);
}

void FillExplanation(const DecisionExplanation& explanation, const AllotConfig& config,
                     v1::Explanation* out) {
  out->set_user_value(explanation.user_value);
  out->set_value_bucket(static_cast<uint32_t>(explanation.value_bucket));
  out->set_inference(explanation.inference);
  out->set_max_cost_ms(explanation.max_cost_ms);
  out->set_model(explanation.model);
  out->set_chosen_by(explanation.chosen_by);
  for (const OptionExplanation& o : explanation.options) {
    v1::OptionScore* option = out->add_options();
    option->set_joint_action(static_cast<uint32_t>(o.joint));
    option->set_label(o.label);
    option->set_value(o.value);
    for (const ModuleCharge& c : o.charges) {
      v1::ModuleCost* cost = option->add_costs();
      cost->set_module(config.modules[c.module].name);
      cost->set_cost_ms(c.cost_ms);
      cost->set_compute_price(c.price);
    }
    option->set_priced_score(o.priced);
    option->set_over_cap(o.over_cap);
    option->set_unlogged(o.unlogged);
    option->set_chosen(o.chosen);
  }
}

void FillAgentSchemas(const PolicySnapshot& policy, v1::ControlState* state) {
  for (size_t i = 0; i < policy.config->agents.size(); ++i) {
    const AgentConfig& agent = policy.config->agents[i];
    v1::AgentSchema* out = state->add_agents();
    out->set_name(agent.name);
    out->set_module(agent.module);
    for (const std::string& f : agent.features) out->add_features(f);
    out->set_joint_actions(static_cast<uint32_t>(policy.spaces[i].size()));
    for (const DecisionConfig& d : agent.decisions) {
      v1::DecisionSchema* ds = out->add_decisions();
      ds->set_name(d.name);
      ds->set_kind(ToProto(d.kind));
      for (const OptionConfig& o : d.options) ds->add_options(o.label);
      if (d.kind == DecisionKind::kLink) {
        ds->set_min_selected(static_cast<uint32_t>(d.min_selected));
        ds->set_max_selected(
            static_cast<uint32_t>(d.max_selected ? d.max_selected : d.options.size()));
      }
      for (const std::string& s : d.safe_default) ds->add_safe_default(s);
      if (d.range) {
        v1::QueueRange* range = ds->mutable_range();
        range->set_min(static_cast<uint32_t>(d.range->min));
        range->set_max(static_cast<uint32_t>(d.range->max));
        range->set_granularity(static_cast<uint32_t>(d.range->granularity));
        range->set_fixed_cost_ms(d.range->fixed_cost_ms);
        range->set_cost_per_item_ms(d.range->cost_per_item_ms);
      }
    }
  }
}

}  // namespace allot
