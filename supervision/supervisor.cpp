#include "supervision/supervisor.hpp"

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

#include "supervision/supervisor_actor.hpp"

namespace cerebelum::supervision {

caf::expected<caf::actor> spawn_supervisor(caf::actor_system& sys,
                                           supervisor_config cfg) {
  if (auto err = validate(cfg)) return err;
  return sys.spawn<detail::supervisor_actor>(std::move(cfg));
}

caf::expected<caf::actor> start_supervisor(caf::actor_system& sys,
                                           supervisor_config cfg) {
  auto sup = spawn_supervisor(sys, std::move(cfg));
  if (!sup) return sup;
  caf::scoped_actor self{sys};
  self->monitor(*sup);
  caf::error failure;
  self->request(*sup, caf::infinite, await_started_atom_v)
    .receive([] {},
             [&](caf::error& err) {
               failure = std::move(err);
             });
  if (failure == caf::sec::request_receiver_down) {
    // The supervisor failed before it read the request: its exit reason
    // names the child.
    self->receive([&](caf::down_msg& x) {
      if (x.source == *sup) failure = std::move(x.reason);
    });
  }
  self->demonitor(*sup);
  if (failure) return failure;
  return sup;
}

child_spec supervisor_spec(std::string id, supervisor_config cfg,
                           restart_type restart) {
  if (cfg.name.empty()) cfg.name = id;
  child_spec spec;
  spec.id = std::move(id);
  spec.start = [cfg = std::move(cfg)](caf::actor_system& sys,
                                      const caf::message&) {
    return spawn_supervisor(sys, cfg);
  };
  spec.restart = restart;
  spec.shutdown = infinity();
  spec.type = child_type::supervisor;
  return spec;
}

namespace {

template <class T, class... Ts>
caf::expected<T> call(caf::scoped_actor& self, const caf::actor& sup,
                      caf::duration timeout, Ts&&... xs) {
  caf::expected<T> result{caf::sec::unexpected_response};
  self->request(sup, timeout, std::forward<Ts>(xs)...)
    .receive(
      [&](T& x) {
        result = std::move(x);
      },
      [&](caf::error& err) {
        result = std::move(err);
      });
  return result;
}

template <class... Ts>
caf::error call_void(caf::scoped_actor& self, const caf::actor& sup,
                     caf::duration timeout, Ts&&... xs) {
  caf::error result;
  self->request(sup, timeout, std::forward<Ts>(xs)...)
    .receive([] {},
             [&](caf::error& err) {
               result = std::move(err);
             });
  return result;
}

} // namespace

caf::expected<caf::actor> start_child(caf::scoped_actor& self,
                                      const caf::actor& sup, child_spec spec,
                                      caf::duration timeout) {
  return call<caf::actor>(self, sup, timeout, start_child_atom_v,
                          std::move(spec));
}

caf::expected<caf::actor> start_child(caf::scoped_actor& self,
                                      const caf::actor& sup, caf::message args,
                                      caf::duration timeout) {
  return call<caf::actor>(self, sup, timeout, start_child_atom_v,
                          std::move(args));
}

caf::error terminate_child(caf::scoped_actor& self, const caf::actor& sup,
                           const std::string& id, caf::duration timeout) {
  return call_void(self, sup, timeout, terminate_child_atom_v, id);
}

caf::error terminate_child(caf::scoped_actor& self, const caf::actor& sup,
                           const caf::actor& child, caf::duration timeout) {
  return call_void(self, sup, timeout, terminate_child_atom_v, child);
}

caf::expected<caf::actor>
restart_child(caf::scoped_actor& self, const caf::actor& sup,
              const std::string& id, caf::duration timeout) {
  return call<caf::actor>(self, sup, timeout, restart_child_atom_v, id);
}

caf::error delete_child(caf::scoped_actor& self, const caf::actor& sup,
                        const std::string& id, caf::duration timeout) {
  return call_void(self, sup, timeout, delete_child_atom_v, id);
}

caf::expected<std::vector<child_info>> which_children(caf::scoped_actor& self,
                                                      const caf::actor& sup,
                                                      caf::duration timeout) {
  return call<std::vector<child_info>>(self, sup, timeout,
                                       which_children_atom_v);
}

caf::expected<child_counts> count_children(caf::scoped_actor& self,
                                           const caf::actor& sup,
                                           caf::duration timeout) {
  return call<child_counts>(self, sup, timeout, count_children_atom_v);
}

} // namespace cerebelum::supervision
