#pragma once
/// @file
/// @brief Diagrams from the library's own records: a bus's wiring (Mermaid, Graphviz DOT)
/// and one saga as a sequence diagram (Mermaid). Needs only the core and fmt.

#include <choreo/viz/flowchart.hpp>
#include <choreo/viz/saga_sequence.hpp>
#include <choreo/viz/wiring.hpp>
