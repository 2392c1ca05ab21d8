#include "actors/engine_context.hpp"

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#ifdef __GLIBC__
#  include <malloc.h>
#endif

#include "actors/errc.hpp"
#include "actors/messages.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::actors {

engine_context::engine_context(std::shared_ptr<function_registry> functions,
                               engine_options opts, std::size_t call_threads)
  : functions_(functions ? std::move(functions)
                         : std::make_shared<function_registry>()),
    opts_(std::move(opts)),
    calls_(call_threads) {
  if (!opts_.clock) opts_.clock = real_clock();
  health_ = std::make_unique<store_health>(*opts_.clock);
  metrics_ = std::make_shared<node_metrics>();
  feed_ = std::make_shared<event_feed>();
}

engine_context::~engine_context() {
  close();
}

void engine_context::attach_store(
  std::shared_ptr<eventstore::event_store> store) {
  std::vector<std::string> files_names;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (store_) return;
    attach_locked(std::move(store));
    for (const auto& [name, owner] : owners_)
      if (owner.empty()) files_names.push_back(name);
  }
  // The node's files were loaded before the store opened: what they took
  // from worker identities is recorded now.
  std::lock_guard<std::mutex> serial{owners_mtx_};
  for (const auto& name : files_names)
    record_files_owner(name);
}

void engine_context::attach_locked(
  std::shared_ptr<eventstore::event_store> store) {
  store_ = std::move(store);
  auto wopts = opts_.writer;
  auto chained = std::move(wopts.on_group);
  wopts.on_group = [m = metrics_, chained](std::size_t n,
                                           std::chrono::nanoseconds took) {
    m->commit(n, std::chrono::duration<double>(took).count());
    if (chained) chained(n, took);
  };
  auto chained_commit = std::move(wopts.on_committed);
  wopts.on_committed = [f = feed_,
                        chained_commit](const eventstore::append_request& req) {
    if (!req.events.empty()) f->committed(req.execution_id);
    if (chained_commit) chained_commit(req);
  };
  writer_ = std::make_unique<eventstore::group_writer>(store_, wopts);
}

std::string engine_context::metrics_text() const {
  metrics_->store_available(health_->get().available);
  metrics_->event_followers(feed_->followers());
  return metrics_->text();
}

bool engine_context::has_store() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return store_ != nullptr;
}

void engine_context::close() {
  std::lock_guard<std::mutex> guard{close_mtx_};
  if (closed_) return;
  closed_ = true;
  calls_.stop();
  eventstore::group_writer* writer = nullptr;
  {
    std::lock_guard<std::mutex> inner{mtx_};
    writer = writer_.get();
  }
  if (writer) writer->close();
}

std::vector<std::string>
engine_context::add_locked(workflow::definition def, std::string source,
                           bool permanent, const std::string& worker,
                           bool from_store, bool owned) {
  auto& e = defs_[def.name][def.version_hash];
  bool fresh = !e.def;
  // The same version again (a worker registering after a restart of its
  // own) keeps the object executions already point to.
  if (!e.def)
    e.def = std::make_shared<const workflow::definition>(std::move(def));
  const auto& ptr = e.def;
  if (from_store) {
    // Read back for an execution (or an explicit start): held for the
    // node's life, the latest only when nothing else of the name is.
    if (fresh) {
      e.source = std::move(source);
      e.added = ++add_seq_;
      e.stored_only = true;
    }
    e.permanent = true;
    stored_.insert({ptr->name, ptr->version_hash});
    if (latest_.count(ptr->name) == 0) latest_[ptr->name] = ptr;
  } else if (!owned || (!fresh && !e.stored_only && !e.workers.empty())) {
    // Another identity's copy of a loaded version, or a version workers
    // hold already (a reconnect, or an older process of a rolling deploy
    // registering again): held, nothing else moves.
    if (!worker.empty()) e.workers.insert(worker);
  } else {
    e.source = std::move(source);
    e.added = ++add_seq_;
    e.stored_only = false;
    e.permanent = e.permanent || permanent;
    if (!worker.empty()) e.workers.insert(worker);
    latest_[ptr->name] = ptr;
  }
  std::vector<std::string> woken;
  auto i = parked_.find({ptr->name, ptr->version_hash});
  if (i != parked_.end()) {
    woken = std::move(i->second);
    parked_.erase(i);
    unparked_.insert(woken.begin(), woken.end());
    needed_.insert({ptr->name, ptr->version_hash});
  }
  return woken;
}

bool engine_context::drop_holder_locked(const std::string& worker,
                                        const std::set<version_key>& keep) {
  bool dropped = false;
  for (auto& [name, versions] : defs_)
    for (auto& [version, e] : versions)
      if (keep.count({name, version}) == 0 && e.workers.erase(worker) > 0)
        dropped = true;
  return dropped;
}

void engine_context::sweep_locked(std::vector<definition_ptr>& out) {
  // Before the resurrector reported every open execution, any version may
  // be needed by one.
  if (!resurrection_time_) return;
  for (auto n = defs_.begin(); n != defs_.end();) {
    auto& versions = n->second;
    bool latest_gone = false;
    for (auto v = versions.begin(); v != versions.end();) {
      auto& e = v->second;
      if (e.permanent || !e.workers.empty()
          || needed_.count({n->first, v->first}) > 0) {
        ++v;
        continue;
      }
      auto l = latest_.find(n->first);
      latest_gone = latest_gone || (l != latest_.end() && l->second == e.def);
      out.push_back(std::move(e.def));
      v = versions.erase(v);
    }
    if (latest_gone) {
      // The most recently added version that remains, if any.
      const def_entry* best = nullptr;
      for (auto& [version, e] : versions)
        if (best == nullptr || e.added > best->added) best = &e;
      if (best)
        latest_[n->first] = best->def;
      else
        latest_.erase(n->first);
    }
    n = versions.empty() ? defs_.erase(n) : std::next(n);
  }
}

void engine_context::after_change(const std::string& what,
                                  std::vector<std::string> ids,
                                  std::vector<definition_ptr> released) {
  if (!released.empty()) {
    spdlog::info("{}: released {} workflow definition(s) no registration "
                 "or execution needs",
                 what, released.size());
    released.clear();
#ifdef __GLIBC__
    // A definition is thousands of small blocks; without a trim the freed
    // pages stay resident.
    malloc_trim(0);
#endif
  }
  if (ids.empty()) return;
  auto engine = this->registry();
  spdlog::info("{}: waking {} parked execution(s)", what, ids.size());
  // Running ones resume (their in-flight steps are re-dispatched); sleeping
  // or awaiting ones fold and stay passive until their timer or approval.
  if (engine)
    for (auto& id : ids)
      caf::anon_send(engine, wake_atom::value, id);
}

void engine_context::add_definition(workflow::definition def,
                                    std::string source) {
  auto what = "workflow " + def.name + " (version "
              + std::to_string(def.version_hash) + ") added";
  std::lock_guard<std::mutex> serial{owners_mtx_};
  if (has_store()) record_files_owner(def.name);
  std::vector<std::string> woken;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // The operator's: whoever registered the name before (a worker that
    // raced the node's boot) no longer owns it.
    owners_.insert_or_assign(def.name, std::string{});
    unclaimed_.erase(def.name);
    woken = add_locked(std::move(def), std::move(source), true, {});
  }
  after_change(what, std::move(woken), {});
}

void engine_context::record_files_owner(const std::string& name) {
  auto row = store().get_workflow_owner(name);
  if (!row) {
    spdlog::warn("the owner of workflow {} could not be read from the store "
                 "({}); the node's workflow files take it without a record",
                 workflow::printable(name), eventstore::to_string(row.err()));
    return;
  }
  // A name no one recorded stays unrecorded; one the files hold already
  // needs nothing.
  if (!*row || (*row)->owner == eventstore::files_owner) return;
  auto done = store().replace_workflow_owner(name, eventstore::files_owner,
                                             eventstore::files_owner, now_ms());
  if (!done) {
    spdlog::warn("the node's workflow files take workflow {} from {}, but "
                 "the store did not record it ({})",
                 workflow::printable(name), workflow::printable((*row)->owner),
                 eventstore::to_string(done.err()));
    return;
  }
  spdlog::warn("workflow {} replaced: owner {} -> {} by {}",
               workflow::printable(name), workflow::printable((*row)->owner),
               eventstore::files_owner, eventstore::files_owner);
}

namespace {

/// How a refusal names an owner.
std::string owner_text(const std::string& owner) {
  return owner.empty() ? std::string{eventstore::files_owner}
                       : workflow::printable(owner);
}

std::string refusal(const std::string& name, const std::string& owner,
                    const std::string& worker) {
  return "workflow '" + workflow::printable(name) + "' is defined by "
         + owner_text(owner) + "; a worker may not replace it (worker '"
         + workflow::printable(worker) + "' brings a different version)";
}

} // namespace

std::optional<std::string>
engine_context::register_definitions(const std::string& worker,
                                     const std::string& identity,
                                     std::vector<workflow::definition> defs,
                                     bool may_replace) {
  const std::string owner_key = identity.empty() ? any_worker : identity;
  // Without tokens there is no one to replace owners.
  may_replace = may_replace && !identity.empty();
  std::lock_guard<std::mutex> serial{owners_mtx_};
  // Learn, check, then record: a refused registration records nothing.
  if (!identity.empty()) learn_owners(defs);
  std::vector<std::string> claim;
  std::vector<std::string> replace;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // All or nothing: check every name before adding or recording any.
    for (auto& d : defs) {
      auto o = owners_.find(d.name);
      if (o == owners_.end()) {
        claim.push_back(d.name);
        continue;
      }
      if (o->second == owner_key) {
        if (unclaimed_.count(d.name) > 0) claim.push_back(d.name);
        continue;
      }
      auto n = defs_.find(d.name);
      if (n != defs_.end()) {
        auto v = n->second.find(d.version_hash);
        if (v != n->second.end() && !v->second.stored_only) continue;
      }
      // The node's files stay the operator's, whoever registers.
      if (may_replace && !o->second.empty()) {
        replace.push_back(d.name);
        continue;
      }
      return refusal(d.name, o->second, worker)
             + (o->second.empty() ? "" : " (a token of role admin may)");
    }
  }
  if (!identity.empty())
    if (auto why = record_owners(worker, identity, may_replace,
                                 std::move(claim), std::move(replace)))
      return why;
  std::vector<std::string> woken;
  std::vector<definition_ptr> released;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    std::set<version_key> now;
    for (auto& d : defs) {
      now.insert({d.name, d.version_hash});
      // Unchanged since the check (owners_mtx_): the names it let through
      // are now `owner_key`'s, or another's with a version loaded already.
      auto o = owners_.find(d.name);
      bool owned = o == owners_.end() || o->second == owner_key;
      if (o == owners_.end()) owners_.emplace(d.name, owner_key);
      auto ids = add_locked(std::move(d), "worker:" + worker, false, worker,
                            false, owned);
      woken.insert(woken.end(), ids.begin(), ids.end());
    }
    drop_holder_locked(worker, now);
    sweep_locked(released);
  }
  after_change("worker " + worker + " registered", std::move(woken),
               std::move(released));
  return std::nullopt;
}

void engine_context::learn_owners(
  const std::vector<workflow::definition>& defs) {
  if (!has_store()) return;
  for (const auto& d : defs) {
    auto row = store().get_workflow_owner(d.name);
    if (!row) {
      // The check goes on with what this node knows.
      spdlog::warn("the owner of workflow {} could not be read from the "
                   "store ({}); checked against what this node knows",
                   workflow::printable(d.name),
                   eventstore::to_string(row.err()));
      continue;
    }
    if (!*row) continue;
    std::lock_guard<std::mutex> guard{mtx_};
    auto o = owners_.find(d.name);
    // This node's files keep theirs (they took it when they were loaded).
    if (o != owners_.end() && o->second.empty()) continue;
    auto stored = (*row)->owner == eventstore::files_owner ? std::string{}
                                                           : (*row)->owner;
    owners_.insert_or_assign(d.name, std::move(stored));
    unclaimed_.erase(d.name);
  }
}

std::optional<std::string>
engine_context::record_owners(const std::string& worker,
                              const std::string& identity, bool may_replace,
                              std::vector<std::string> claim,
                              std::vector<std::string> replace) {
  if (!has_store()) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& name : replace)
      owners_.insert_or_assign(name, identity);
    return std::nullopt;
  }
  for (auto& name : claim) {
    auto stored = store().claim_workflow(name, identity, now_ms());
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stored) {
      // The check goes on in memory; the name is recorded at its owner's
      // next registration.
      if (unclaimed_.insert(name).second)
        spdlog::warn("the owner of workflow {} was not recorded in the store "
                     "({}); it is kept in memory and recorded at its next "
                     "registration",
                     workflow::printable(name),
                     eventstore::to_string(stored.err()));
      owners_.emplace(name, identity);
      continue;
    }
    unclaimed_.erase(name);
    if (*stored == identity) {
      owners_.emplace(name, identity);
      continue;
    }
    // Another node's worker claimed it after this node read the store.
    auto theirs = *stored == eventstore::files_owner ? std::string{} : *stored;
    if (may_replace && !theirs.empty()) {
      replace.push_back(name);
      continue;
    }
    owners_.insert_or_assign(name, theirs);
    return refusal(name, theirs, worker);
  }
  for (auto& name : replace) {
    auto row = store().replace_workflow_owner(name, identity, identity,
                                              now_ms());
    if (!row)
      return "workflow '" + workflow::printable(name)
             + "': the replacement of its owner could not be recorded ("
             + eventstore::to_string(row.err()) + "); nothing was registered";
    spdlog::warn("workflow {} replaced: owner {} -> {} by {} (worker {})",
                 workflow::printable(name),
                 workflow::printable(row->previous_owner),
                 workflow::printable(identity), workflow::printable(identity),
                 workflow::printable(worker));
    std::lock_guard<std::mutex> guard{mtx_};
    owners_.insert_or_assign(name, identity);
    unclaimed_.erase(name);
  }
  return std::nullopt;
}

caf::expected<engine_context::owner_record>
engine_context::owner_of(const std::string& name) {
  owner_record out;
  bool known = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto o = owners_.find(name); o != owners_.end()) {
      out.owner = o->second.empty() ? std::string{eventstore::files_owner}
                                    : o->second;
      known = true;
    }
  }
  if (has_store()) {
    auto row = store().get_workflow_owner(name);
    if (!row)
      return make_error(errc::unavailable,
                        "the owner of workflow '" + workflow::printable(name)
                          + "' could not be read: "
                          + eventstore::to_string(row.err()));
    out.stored = std::move(*row);
  }
  if (!known && !out.stored)
    return make_error(errc::unknown_workflow, "no one owns workflow '"
                                                + workflow::printable(name)
                                                + "': it was never defined");
  if (!known) out.owner = out.stored->owner;
  return out;
}

caf::expected<engine_context::owner_record>
engine_context::transfer_owner(const std::string& name, const std::string& to,
                               const std::string& by) {
  std::lock_guard<std::mutex> serial{owners_mtx_};
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto o = owners_.find(name); o != owners_.end() && o->second.empty())
      return make_error(errc::not_transferable,
                        "workflow '" + workflow::printable(name)
                          + "' is defined by this node's workflow files "
                            "(--workflows): they own it on this node; remove "
                            "it there first");
  }
  auto before = owner_of(name);
  if (!before) return std::move(before.error());
  if (!has_store())
    return make_error(errc::unavailable,
                      "this node has no store to record the transfer in");
  auto row = store().replace_workflow_owner(name, to, by, now_ms());
  if (!row)
    return make_error(errc::unavailable, "the transfer of workflow '"
                                           + workflow::printable(name)
                                           + "' was not recorded: "
                                           + eventstore::to_string(row.err()));
  spdlog::warn("workflow {} transferred: owner {} -> {} by {}",
               workflow::printable(name), workflow::printable(before->owner),
               workflow::printable(to), workflow::printable(by));
  {
    std::lock_guard<std::mutex> guard{mtx_};
    owners_.insert_or_assign(name, to);
    unclaimed_.erase(name);
  }
  return owner_record{to, std::move(*row)};
}

std::optional<std::string>
engine_context::owner(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = owners_.find(name);
  if (i == owners_.end()) return std::nullopt;
  return i->second;
}

void engine_context::unregister_definitions(const std::string& worker) {
  std::vector<definition_ptr> released;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!drop_holder_locked(worker, {})) return;
    sweep_locked(released);
  }
  after_change("worker " + worker + " gone", {}, std::move(released));
}

void engine_context::note_open_execution(const std::string& name,
                                         std::uint64_t version) {
  std::lock_guard<std::mutex> guard{mtx_};
  needed_.insert({name, version});
}

bool engine_context::take_unparked(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  return unparked_.erase(id) > 0;
}

engine_context::park_result engine_context::park(const std::string& id,
                                                 const std::string& name,
                                                 std::uint64_t version) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto i = defs_.find(name);
      i != defs_.end() && i->second.count(version) > 0)
    return park_result::now_known;
  needed_.insert({name, version});
  auto& ids = parked_[{name, version}];
  if (std::find(ids.begin(), ids.end(), id) != ids.end())
    return park_result::parked_again;
  ids.push_back(id);
  return park_result::parked_first;
}

engine_context::definition_ptr
engine_context::latest(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = latest_.find(name);
  if (i == latest_.end()) return nullptr;
  needed_.insert({name, i->second->version_hash});
  return i->second;
}

engine_context::definition_ptr
engine_context::find(const std::string& name, std::uint64_t version) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = defs_.find(name);
  if (i == defs_.end()) return nullptr;
  auto j = i->second.find(version);
  if (j == i->second.end()) return nullptr;
  needed_.insert({name, version});
  return j->second.def;
}

std::vector<std::tuple<std::string, std::uint64_t, std::string>>
engine_context::definitions() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::tuple<std::string, std::uint64_t, std::string>> result;
  for (auto& [name, versions] : defs_)
    for (auto& [version, e] : versions)
      result.emplace_back(name, version, e.source);
  return result;
}

eventstore::result<engine_context::definition_ptr>
engine_context::add_stored(const eventstore::definition_row& row) {
  auto def = workflow::from_stored_document(row.document, row.version,
                                            row.source);
  if (!def)
    return eventstore::make_error(eventstore::errc::corrupt_event,
                                  "workflow " + row.name + ": "
                                    + def.error().to_string());
  if (def->name != row.name)
    return eventstore::make_error(eventstore::errc::corrupt_event,
                                  "stored definition " + row.name + " (version "
                                    + std::to_string(row.version)
                                    + ") is damaged: its document is named "
                                    + def->name);
  auto what = "workflow " + row.name + " (version "
              + std::to_string(row.version) + ") read from the store";
  std::vector<std::string> woken;
  definition_ptr ptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    woken = add_locked(std::move(*def), row.source, true, {}, true);
    ptr = defs_[row.name][row.version].def;
    needed_.insert({row.name, row.version});
  }
  spdlog::info("{} (stored from {})", what, row.source);
  after_change(what, std::move(woken), {});
  return ptr;
}

eventstore::result<engine_context::definition_ptr>
engine_context::find_or_load(const std::string& name, std::uint64_t version) {
  if (auto def = find(name, version)) return def;
  auto row = store().get_definition(name, version);
  if (!row) return std::move(row).err();
  if (!row->has_value()) return definition_ptr{};
  return add_stored(**row);
}

eventstore::result<engine_context::definition_ptr>
engine_context::latest_or_stored(const std::string& name) {
  if (auto def = latest(name)) return def;
  auto rows = store().list_definitions(name, false);
  if (!rows) return std::move(rows).err();
  if (rows->empty()) return definition_ptr{};
  // Ordered by stored_at: the last one is the most recent.
  return find_or_load(name, rows->back().version);
}

std::optional<eventstore::definition_row>
engine_context::row_to_store(const workflow::definition& def,
                             std::int64_t now_ms) const {
  std::string source;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stored_.count({def.name, def.version_hash}) > 0) return std::nullopt;
    if (auto i = defs_.find(def.name); i != defs_.end())
      if (auto j = i->second.find(def.version_hash); j != i->second.end())
        source = j->second.source;
  }
  return eventstore::definition_row{def.name, def.version_hash,
                                    workflow::to_stored_document(def),
                                    source.empty() ? def.file : source, now_ms};
}

void engine_context::note_stored(const std::string& name,
                                 std::uint64_t version) {
  std::lock_guard<std::mutex> guard{mtx_};
  stored_.insert({name, version});
}

std::optional<std::uint64_t>
engine_context::latest_version(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = latest_.find(name);
  if (i == latest_.end()) return std::nullopt;
  return i->second->version_hash;
}

bool engine_context::has(const std::string& name, std::uint64_t version) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = defs_.find(name);
  return i != defs_.end() && i->second.count(version) > 0;
}

bool engine_context::is_damaged(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return damaged_.count(id) > 0;
}

bool engine_context::loaded(const std::string& name,
                            std::uint64_t version) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = defs_.find(name);
  if (i == defs_.end()) return false;
  auto j = i->second.find(version);
  return j != i->second.end() && !j->second.stored_only;
}

void engine_context::set_registry(caf::actor x) {
  std::lock_guard<std::mutex> guard{mtx_};
  registry_ = std::move(x);
}

void engine_context::set_scheduler(caf::actor x) {
  std::lock_guard<std::mutex> guard{mtx_};
  scheduler_ = std::move(x);
}

void engine_context::set_executions_sup(caf::actor x) {
  std::lock_guard<std::mutex> guard{mtx_};
  executions_sup_ = std::move(x);
}

void engine_context::set_wait_hub(caf::actor x) {
  std::lock_guard<std::mutex> guard{mtx_};
  wait_hub_ = std::move(x);
}

caf::actor engine_context::wait_hub() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return wait_hub_;
}

void engine_context::set_task_router(caf::actor x) {
  std::lock_guard<std::mutex> guard{mtx_};
  task_router_ = std::move(x);
}

caf::actor engine_context::task_router() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return task_router_;
}

caf::actor engine_context::registry() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return registry_;
}

caf::actor engine_context::scheduler() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return scheduler_;
}

caf::actor engine_context::executions_sup() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return executions_sup_;
}

void engine_context::hand_over(const std::string& id, started_execution x) {
  std::lock_guard<std::mutex> guard{handover_mtx_};
  handovers_.insert_or_assign(id, std::move(x));
}

std::optional<started_execution>
engine_context::take_over(const std::string& id) {
  std::lock_guard<std::mutex> guard{handover_mtx_};
  auto i = handovers_.find(id);
  if (i == handovers_.end()) return std::nullopt;
  auto result = std::move(i->second);
  handovers_.erase(i);
  return result;
}

void engine_context::drop_handover(const std::string& id) {
  std::lock_guard<std::mutex> guard{handover_mtx_};
  handovers_.erase(id);
}

void engine_context::note_resurrection_done(std::chrono::milliseconds took) {
  std::vector<definition_ptr> released;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    resurrection_time_ = took;
    // Registrations that came and went while the node was booting.
    sweep_locked(released);
  }
  after_change("boot", {}, std::move(released));
}

std::optional<std::chrono::milliseconds>
engine_context::resurrection_time() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return resurrection_time_;
}

namespace {

/// Damaged executions remembered by name (the count covers them all).
constexpr std::size_t damaged_names_kept = 100;

} // namespace

bool engine_context::note_damaged(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!damaged_.insert(id).second) return false;
  if (damaged_first_.size() < damaged_names_kept) damaged_first_.push_back(id);
  return true;
}

std::pair<std::size_t, std::vector<std::string>>
engine_context::damaged(std::size_t max) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto n = std::min(max, damaged_first_.size());
  return {damaged_.size(),
          {damaged_first_.begin(),
           damaged_first_.begin() + static_cast<std::ptrdiff_t>(n)}};
}

void engine_context::fatal(caf::error reason) {
  std::function<void(const caf::error&)> fn;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (fatal_) return;
    fatal_ = reason;
    fn = on_fatal_;
  }
  if (fn) fn(reason);
}

caf::error engine_context::on_fatal(std::function<void(const caf::error&)> fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  on_fatal_ = std::move(fn);
  return fatal_;
}

eventstore::execution_status to_store_status(workflow::execution_status st) {
  using es = eventstore::execution_status;
  switch (st) {
    case workflow::execution_status::running: return es::running;
    case workflow::execution_status::sleeping: return es::sleeping;
    case workflow::execution_status::awaiting_approval:
      return es::awaiting_approval;
    case workflow::execution_status::completed: return es::completed;
    case workflow::execution_status::failed: return es::failed;
    case workflow::execution_status::cancelled: return es::cancelled;
  }
  return es::running;
}

} // namespace cerebelum::actors
