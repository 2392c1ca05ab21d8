#include "actors/engine_api.hpp"

namespace cerebelum::actors {

// Out of line, in a file of its own: a front end's test double (and the
// fuzz harnesses, tests/fuzz) links the interface without the engine.
engine_api::~engine_api() {
  // nop
}

} // namespace cerebelum::actors
