// PEM certificate bundles (attestation trust anchors) to DER.
#pragma once

#include <string_view>
#include <vector>

#include "engine/base/result.h"
#include "engine/crypto/bytes.h"

namespace sigil::crypto {

// Every CERTIFICATE block of `pem`, DER-encoded. kInvalidArgument when there is none or one is malformed.
[[nodiscard]] Result<std::vector<Bytes>> pem_certificates_to_der(std::string_view pem);

}  // namespace sigil::crypto
