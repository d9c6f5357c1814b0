# RouterConfig nested as the YAML (branch `settings`): old flat field -> new nested path.
# Usage: sed -E -i -f RENAMES.sed FILE...   (GNU sed, extended regexps)
# Receivers covered: config, next, running, cfg, config_ (with . or ->) and config(). (a getter).
# Only on code whose receivers are RouterConfigs (router.cpp and its successors); NOT on
# app/cmd_cluster_sim.cpp or src/cluster_sim/, whose `config.seed` etc. are other structs.
# Safe to apply twice: the policy rules first protect already-renamed policy.name/params/seed.
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)policy\.(name|params|seed)\b/\1POLICY_RENAMED_\4/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)policy\b/\1policy.name/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)POLICY_RENAMED_/\1policy./g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)policy_params\b/\1policy.params/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)seed\b/\1policy.seed/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)host\b/\1listen.host/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)port\b/\1listen.port/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)admin_host\b/\1admin.host/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)admin_port\b/\1admin.port/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)admin_token\b/\1admin.token/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)scrape_interval_s\b/\1scrape.interval_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)scrape_timeout_s\b/\1scrape.timeout_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)scrape_max_bytes\b/\1scrape.max_body_bytes/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)stale_after_s\b/\1scrape.stale_after_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)health_interval_s\b/\1health.interval_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)health_timeout_s\b/\1health.timeout_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)health_failure_threshold\b/\1health.failure_threshold/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)health_success_threshold\b/\1health.success_threshold/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)models_interval_s\b/\1models.refresh_interval_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)model_aliases\b/\1models.aliases/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)connect_timeout_s\b/\1timeouts.connect_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)first_byte_timeout_s\b/\1timeouts.first_byte_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)idle_timeout_s\b/\1timeouts.idle_s/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)tls_cert_file\b/\1tls.cert_file/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)tls_key_file\b/\1tls.key_file/g
s/(\b(config|next|running|cfg|config_)(\.|->)|\bconfig\(\)\.)kv_events_pattern\b/\1kv_events/g
