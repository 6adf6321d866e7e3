#include "api/server/hosted_pages.h"

#include <utility>
#include <vector>

#include "api/server/assets.h"
#include "engine/base/json_writer.h"

namespace sigil::server {
namespace {

struct Entry {
  std::string_view key, en, fr;
};

// The string table. Keys used only by hosted.js travel in the page data.
constexpr Entry kStrings[] = {
    {"title", "Sign in", "Connexion"},
    {"heading", "Sign in to {app}", "Connexion à {app}"},
    {"identifier_label", "Email address", "Adresse e-mail"},
    {"continue", "Continue", "Continuer"},
    {"or", "or", "ou"},
    {"passkey_button", "Sign in with a passkey", "Se connecter avec une clé d’accès"},
    {"signup_note", "New here? Enter your email address and we will create your account.",
     "Nouveau ? Saisissez votre adresse e-mail et nous créerons votre compte."},
    {"otp_heading", "Check your email", "Consultez vos e-mails"},
    {"otp_label", "6-digit code", "Code à 6 chiffres"},
    {"otp_help", "We sent a 6-digit code to {email}.", "Nous avons envoyé un code à 6 chiffres à {email}."},
    {"otp_submit", "Confirm", "Confirmer"},
    {"otp_resend", "Send a new code", "Envoyer un nouveau code"},
    {"otp_resent", "A new code is on its way.", "Un nouveau code est en route."},
    {"otp_wrong", "This code is not correct.", "Ce code n’est pas correct."},
    {"otp_expired", "This code has expired. Ask for a new one.", "Ce code a expiré. Demandez-en un nouveau."},
    {"register_heading", "Create a passkey", "Créez une clé d’accès"},
    {"register_help",
     "Your email address is confirmed. Create a passkey to sign in with your fingerprint, face or screen lock.",
     "Votre adresse e-mail est confirmée. Créez une clé d’accès pour vous connecter avec votre empreinte, "
     "votre visage ou le verrouillage de l’écran."},
    {"register_button", "Create a passkey", "Créer une clé d’accès"},
    {"cancel", "Cancel and return to the application", "Annuler et revenir à l’application"},
    {"working", "Please wait…", "Veuillez patienter…"},
    {"email_invalid", "Enter a valid email address.", "Saisissez une adresse e-mail valide."},
    {"no_account", "No account uses this email address.", "Aucun compte n’utilise cette adresse e-mail."},
    {"too_many", "Too many attempts. Wait a few minutes and try again.",
     "Trop de tentatives. Patientez quelques minutes et réessayez."},
    {"passkey_exists", "This passkey is already registered. Sign in with it instead.",
     "Cette clé d’accès est déjà enregistrée. Connectez-vous avec elle."},
    {"error_passkey", "The passkey request was cancelled or not accepted. Try again.",
     "La demande de clé d’accès a été annulée ou refusée. Réessayez."},
    {"error_unsupported", "This browser does not support passkeys.",
     "Ce navigateur ne prend pas en charge les clés d’accès."},
    {"error_network", "The server could not be reached. Try again.", "Le serveur est injoignable. Réessayez."},
    {"error_generic", "Something went wrong. Try again.", "Une erreur est survenue. Réessayez."},
    {"error_expired", "This sign-in request has expired. Go back to the application and start again.",
     "Cette demande de connexion a expiré. Revenez à l’application et recommencez."},
    {"error_title", "Sign-in unavailable", "Connexion impossible"},
    {"signed_out_title", "Signed out", "Déconnecté"},
    {"signed_out", "You are signed out.", "Vous êtes déconnecté."},
    {"reg_title", "Register a passkey", "Enregistrer une clé d’accès"},
    {"reg_help", "Create a passkey for {identifier} at {app}.", "Créez une clé d’accès pour {identifier} sur {app}."},
    {"reg_expired", "This registration link has expired or was already used.",
     "Ce lien d’enregistrement a expiré ou a déjà été utilisé."},
};

constexpr std::string_view kScriptKeys[] = {
    "working", "otp_help", "otp_resent", "otp_wrong", "otp_expired", "email_invalid", "no_account", "too_many",
    "passkey_exists", "error_passkey", "error_unsupported", "error_network", "error_generic", "error_expired"};

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// JSON for a <script type="application/json"> element: '<' escaped so that no "</script>" can end it.
std::string script_json(std::string json) { return replace_all(std::move(json), "<", "\\u003c"); }

std::string page_data(std::string_view locale, std::string_view page, std::string_view id_name, std::string_view id) {
  JsonWriter w;
  w.begin_object();
  w.key("page").string(page);
  w.key(id_name).string(id);
  w.key("strings").begin_object();
  for (std::string_view k : kScriptKeys) w.key(k).string(hosted_string(locale, k));
  w.end_object();
  w.end_object();
  return script_json(std::move(w).str());
}

std::string asset_text(std::string_view name) {
  const EmbeddedAsset* a = find_asset(name);
  return a == nullptr ? std::string() : std::string(a->data);
}

}  // namespace

std::string_view hosted_string(std::string_view locale, std::string_view key) {
  for (const Entry& e : kStrings) {
    if (e.key == key) return locale == "fr" ? e.fr : e.en;
  }
  return {};
}

std::string render_login_page(const service::LoginView& view, std::string_view ticket) {
  const std::string_view l = view.locale;
  std::vector<std::pair<std::string, std::string>> values;
  for (const Entry& e : kStrings) values.emplace_back(std::string(e.key), std::string(hosted_string(l, e.key)));
  for (auto& [k, v] : values) {
    if (k == "heading") v = replace_all(v, "{app}", view.app_name);
  }
  values.emplace_back("lang", std::string(l));
  values.emplace_back("app_name", view.app_name);
  values.emplace_back("login_hint", view.login_hint);
  values.emplace_back("custom_message", view.custom_message);
  values.emplace_back("message_hidden", view.custom_message.empty() ? " hidden" : "");
  values.emplace_back("signup_hidden", view.create_new_user ? "" : " hidden");
  values.emplace_back("page_data", page_data(l, "login", "ticket", ticket));
  return render_template(asset_text("login.html"), values);
}

std::string render_registration_page(const service::RegistrationView& view, std::string_view token) {
  const std::string_view l = view.locale;
  std::vector<std::pair<std::string, std::string>> values;
  for (const Entry& e : kStrings) values.emplace_back(std::string(e.key), std::string(hosted_string(l, e.key)));
  for (auto& [k, v] : values) {
    if (k == "reg_help") v = replace_all(replace_all(v, "{identifier}", view.identifier), "{app}", view.app_name);
  }
  values.emplace_back("lang", std::string(l));
  values.emplace_back("app_name", view.app_name);
  values.emplace_back("page_data", page_data(l, "registration", "token", token));
  return render_template(asset_text("registration.html"), values);
}

std::string render_error_page(std::string_view locale, std::string_view message) {
  return render_template(asset_text("error.html"), {{"lang", std::string(locale)},
                                                    {"title", std::string(hosted_string(locale, "error_title"))},
                                                    {"error", std::string(message)}});
}

std::string render_message_page(std::string_view locale, std::string_view title, std::string_view message) {
  return render_template(asset_text("message.html"), {{"lang", std::string(locale)},
                                                      {"title", std::string(title)},
                                                      {"message", std::string(message)}});
}

}  // namespace sigil::server
