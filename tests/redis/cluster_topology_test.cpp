#include "cluster_topology.hpp"
