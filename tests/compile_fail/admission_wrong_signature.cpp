// SPDX-License-Identifier: MIT
// Must not compile: admit() takes the command alone instead of an AdmissionRequest.
#include "parts.hpp"

struct WrongAdmission {
    shannot::Result<std::vector<std::string>> admit(std::vector<std::string> command) const { return command; }
};

CF_INSTANTIATE(cf::GoodTransport, WrongAdmission, cf::GoodOutput);
