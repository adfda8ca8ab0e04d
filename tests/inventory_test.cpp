// SPDX-License-Identifier: MIT
// Ansible inventories (inventory.hpp): the INI and JSON forms, children, variables, patterns, errors.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <string>
#include <vector>

namespace {

std::vector<std::string> names(const shannot::Result<std::vector<const shannot::InventoryHost*>>& hosts) {
    std::vector<std::string> out;
    if (hosts)
        for (const auto* h : *hosts) out.push_back(h->name);
    return out;
}

constexpr const char* ini = R"(# hosts before any section are "ungrouped"
jump ansible_host=10.0.0.1

[web]
web[01:03].example.org ansible_user=www
web-legacy:2222 "note=two words"

[db]
db-[a:b] ansible_host=10.0.1.1
; a comment

[europe:children]
web
db

[prod:children]
europe

[europe:vars]
ansible_user=euro
region = "eu west"

[all:vars]
ansible_port=22
ansible_ssh_private_key_file=/keys/fleet
)";

}  // namespace

TEST_CASE("Inventory: the INI form") {
    auto inv = shannot::parse_inventory_ini(ini, "site.ini");
    REQUIRE(inv);
    CHECK(inv->hosts().size() == 7);
    CHECK(names(inv->select("all")) == std::vector<std::string>{"jump", "web01.example.org", "web02.example.org",
                                                                "web03.example.org", "web-legacy", "db-a", "db-b"});

    SUBCASE("groups of groups: a host is in its group's parents too") {
        const auto* db = inv->find("db-a");
        REQUIRE(db);
        CHECK(db->groups == std::vector<std::string>{"all", "prod", "europe", "db"});
        CHECK(names(inv->select("prod")) == names(inv->select("web:db")));
        CHECK(names(inv->select("ungrouped")) == std::vector<std::string>{"jump"});
    }

    SUBCASE("variables: all, then groups outermost first, then the host's own") {
        const auto* web = inv->find("web02.example.org");
        REQUIRE(web);
        CHECK(web->vars.at("ansible_user") == "www");  // the host's own beats [europe:vars]
        CHECK(web->vars.at("region") == "eu west");    // quotes removed
        CHECK(web->vars.at("ansible_port") == "22");   // from [all:vars]
        CHECK(inv->find("db-b")->vars.at("ansible_user") == "euro");
        CHECK(inv->find("web-legacy")->vars.at("ansible_port") == "2222");  // HOST:PORT beats [all:vars]
        CHECK(inv->find("web-legacy")->vars.at("note") == "two words");
        CHECK(inv->find("jump")->vars.count("ansible_user") == 0);
    }

    SUBCASE("the ssh settings a host's variables give") {
        auto c = inv->connection(*inv->find("db-a"));
        REQUIRE(c);
        CHECK(c->host == "10.0.1.1");
        CHECK(c->user == "euro");
        CHECK(c->port == 22);
        CHECK(c->identity_file == "/keys/fleet");
        auto legacy = inv->connection(*inv->find("web-legacy"));
        REQUIRE(legacy);
        CHECK(legacy->host == "web-legacy");  // no ansible_host: the inventory name
        CHECK(legacy->port == 2222);
        auto bad = shannot::parse_inventory_ini("h ansible_port=http\n", "p.ini");
        REQUIRE(bad);
        auto refused = bad->connection(bad->hosts()[0]);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("p.ini: host h: ansible_port 'http'") != std::string::npos);
    }
}

TEST_CASE("Inventory: host patterns") {
    auto inv = shannot::parse_inventory_ini(ini, "site.ini");
    REQUIRE(inv);
    CHECK(names(inv->select("web")) ==
          std::vector<std::string>{"web01.example.org", "web02.example.org", "web03.example.org", "web-legacy"});
    CHECK(names(inv->select("db-a,jump")) == std::vector<std::string>{"jump", "db-a"});  // inventory order
    CHECK(names(inv->select("web0*")) ==
          std::vector<std::string>{"web01.example.org", "web02.example.org", "web03.example.org"});
    CHECK(names(inv->select("e*")) == names(inv->select("europe")));  // globs match group names too
    CHECK(names(inv->select("europe:!web")) == std::vector<std::string>{"db-a", "db-b"});
    CHECK(names(inv->select("all:&db")) == std::vector<std::string>{"db-a", "db-b"});
    CHECK(names(inv->select("!europe")) == std::vector<std::string>{"jump"});  // starts from all
    // Exclusions apply after unions whatever their order, as in Ansible.
    CHECK(names(inv->select("!db:europe")) == names(inv->select("web")));
    SUBCASE("a term that matches nothing is an error, even in an exclusion") {
        for (const char* pattern : {"wbe", "web:!dbb", "web:&nope", "web::db", "~web.*"}) {
            CAPTURE(pattern);
            auto r = inv->select(pattern);
            REQUIRE_FALSE(r);
        }
        CHECK(inv->select("web:!dbb").error().message.find("'dbb'") != std::string::npos);
        CHECK(inv->select("web:!db"));  // control: the right name passes
    }
}

TEST_CASE("Inventory: the JSON form of ansible-inventory --list") {
    constexpr const char* text = R"({
  "_meta": {"hostvars": {"a1": {"ansible_host": "127.0.0.5", "ansible_port": 2200, "ansible_user": "ops"}}},
  "all": {"children": ["ungrouped", "apps"]},
  "apps": {"children": ["api"], "vars": {"ansible_user": "app"}},
  "api": {"hosts": ["a1", "a2"]},
  "ungrouped": {"hosts": ["lonely"]},
  "legacy": ["old1", "old2"]
})";
    auto inv = shannot::parse_inventory_json(text, "inv.json");
    REQUIRE(inv);
    CHECK(names(inv->select("apps")) == std::vector<std::string>{"a1", "a2"});
    CHECK(names(inv->select("legacy")).size() == 2);
    CHECK(inv->find("a2")->vars.at("ansible_user") == "app");  // from the parent group
    auto c = inv->connection(*inv->find("a1"));
    REQUIRE(c);
    CHECK(c->host == "127.0.0.5");
    CHECK(c->port == 2200);   // a JSON number
    CHECK(c->user == "ops");  // hostvars beat group vars
    CHECK(inv->find("a1")->groups == std::vector<std::string>{"all", "apps", "api"});
}

TEST_CASE("Inventory: a bad inventory is an error naming the file and the line") {
    struct Case {
        const char* text;
        const char* expected;
    };
    const Case ini_cases[] = {
        {"[web\nh1\n", "bad.ini:1: a section header must end with ']'"},
        {"[web]\nh1\n[web:hosts]\n", "bad.ini:3: invalid section [web:hosts]"},
        {"[web]\nh1\n[all:children]\nweb\nnosuch\n",
         "bad.ini:5: the group 'nosuch' is named as a child but never defined"},
        {"[web]\nh1\n\n[db:vars]\nx=1\n", "bad.ini:4: [db:vars] is for a group that is never defined"},
        {"[web:vars]\nno equals sign\n[web]\nh\n", "bad.ini:2: expected KEY=VALUE in [web:vars]"},
        {"[web]\nh1 loose\n", "bad.ini:2: 'loose' after the host name is not KEY=VALUE"},
        {"[web]\nh1 x='open\n", "bad.ini:2: a quote is not closed"},
        {"[web]\nweb[9:1]\n", "bad.ini:2: the host range '[9:1]'"},
        {"[web]\nh1:port\n", "bad.ini:2: 'port' is not a port"},
        {"[a:children]\nb\n[b:children]\na\n", "bad.ini: the groups of"},
    };
    for (const auto& c : ini_cases) {
        const std::string text = c.text;
        CAPTURE(text);
        auto r = shannot::parse_inventory_ini(c.text, "bad.ini");
        REQUIRE_FALSE(r);
        CAPTURE(r.error().message);
        CHECK(r.error().message.find(c.expected) == 0);
    }
    const Case json_cases[] = {
        {"{\n  \"web\": {\n    \"hosts\": [\"a\",]\n  }\n}", "bad.json:3: not valid JSON"},
        {"{\n  \"web\": {\n    \"hosts\": \"a\"\n  }\n}", "bad.json:3: web.hosts: must be a list of names"},
        {"{\n  \"web\": {\"hosts\": [\"a\"],\n    \"host\": []}\n}", "bad.json:3: web.host: unknown key"},
        {"[\"a\"]", "bad.json: the inventory must be a JSON object"},
        {"{\"web\": {\"hosts\": [\"a\"],\n  \"hosts\": [\"b\"]}}", "bad.json:2: web.hosts: duplicate key"},
    };
    for (const auto& c : json_cases) {
        const std::string text = c.text;
        CAPTURE(text);
        auto r = shannot::parse_inventory_json(c.text, "bad.json");
        REQUIRE_FALSE(r);
        CAPTURE(r.error().message);
        CHECK(r.error().message.find(c.expected) == 0);
    }
    // Controls: the same shapes, written right, parse.
    CHECK(shannot::parse_inventory_ini("[web]\nh1:2222 x='closed'\n[all:children]\nweb\n", "ok.ini"));
    CHECK(shannot::parse_inventory_json("{\n  \"web\": {\n    \"hosts\": [\"a\"]\n  }\n}", "ok.json"));
}

TEST_CASE("load_inventory: JSON or INI by the first byte, and a missing file") {
    char templ[] = "/tmp/shannot-inv-XXXXXX";
    REQUIRE(::mkdtemp(templ));
    const std::string dir = templ;
    {
        std::FILE* f = std::fopen((dir + "/inv").c_str(), "w");
        std::fputs("  {\"web\": [\"w1\"]}", f);
        std::fclose(f);
        f = std::fopen((dir + "/inv.ini").c_str(), "w");
        std::fputs("[web]\nw1\n[web:vars]\nbroken\n", f);
        std::fclose(f);
    }
    auto json = shannot::load_inventory(dir + "/inv");
    REQUIRE(json);
    CHECK(names(json->select("web")) == std::vector<std::string>{"w1"});
    auto bad = shannot::load_inventory(dir + "/inv.ini");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message == dir + "/inv.ini:4: expected KEY=VALUE in [web:vars]");
    auto missing = shannot::load_inventory(dir + "/none");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find(dir + "/none") != std::string::npos);
    std::remove((dir + "/inv").c_str());
    std::remove((dir + "/inv.ini").c_str());
    ::rmdir(templ);
}
