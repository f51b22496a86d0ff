// Listen addresses as peers can dial them, shared by the node and the p2pd mode. Any thread.
#pragma once

#include <vector>

#include "p2p/multiformats/multiaddr.h"

namespace an::node {

// Bound addresses with unspecified hosts (0.0.0.0, ::) replaced by one address per interface
// that is up, with the real port. Addresses other than /ip4|ip6/HOST/tcp/PORT are left out.
std::vector<p2p::Multiaddr> expand_unspecified(const std::vector<p2p::Multiaddr>& bound);

}  // namespace an::node
