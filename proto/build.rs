//! Compiles the contracts with protox (pure Rust, no system protoc) and generates prost
//! messages plus tonic clients and servers. The encoded FileDescriptorSet, with custom
//! options such as `google.api.http` intact, is written next to the generated code for
//! server reflection and the REST gateway.

use std::path::{Path, PathBuf};

/// tonic's default server stubs all answer "Not yet implemented"; ours name the RPC, so a
/// caller hitting an RPC that is not built yet learns exactly which one.
const TONIC_STUB_MESSAGE: &str = "\"Not yet implemented\"";

struct NamedUnimplementedStubs(Box<dyn prost_build::ServiceGenerator>);

impl prost_build::ServiceGenerator for NamedUnimplementedStubs {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        let rpc_names: Vec<String> = service
            .methods
            .iter()
            .map(|method| format!("{}.{}/{}", service.package, service.proto_name, method.proto_name))
            .collect();
        let start = buf.len();
        self.0.generate(service, buf);
        let generated = buf.split_off(start);
        let mut pieces = generated.split(TONIC_STUB_MESSAGE);
        buf.push_str(pieces.next().unwrap_or_default());
        let mut stubs = 0;
        for piece in pieces {
            let rpc = rpc_names.get(stubs).expect("more server stubs than RPCs");
            buf.push_str(&format!("\"{rpc} is not implemented yet\""));
            buf.push_str(piece);
            stubs += 1;
        }
        // The stubs are emitted in method order, one per method; anything else means
        // tonic's code generation changed shape and the names above would be wrong.
        assert_eq!(stubs, rpc_names.len(), "one default stub per RPC");
    }

    fn finalize(&mut self, buf: &mut String) {
        self.0.finalize(buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        self.0.finalize_package(package, buf);
    }
}

fn proto_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            proto_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
}

/// Turns every RPC's `complianceiq.common.v1.access` option into a sorted static table, so
/// servers and the gateway authorize from the contract. An RPC without the option stops
/// the build: nothing ships without saying who may call it.
fn write_access_table(pool: &prost_reflect::DescriptorPool, out: &Path) {
    use prost_reflect::Value;
    let extension = pool.get_extension_by_name("complianceiq.common.v1.access").expect("access.proto is compiled");
    let http = pool.get_extension_by_name("google.api.http").expect("annotations.proto is compiled");
    let mut rows = Vec::new();
    for service in pool.services().filter(|s| s.package_name().starts_with("complianceiq.")) {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let options = method.options();
            assert!(options.has_extension(&extension), "{path} has no (complianceiq.common.v1.access) option");
            let Value::Message(access) = options.get_extension(&extension).into_owned() else {
                panic!("{path}: access is not a message");
            };
            let field = |name: &str| access.get_field_by_name(name).expect("field").into_owned();
            let public = field("public").as_bool().unwrap_or(false);
            let permission = field("permission").as_str().unwrap_or_default().to_string();
            let allow_unscoped = field("allow_unscoped").as_bool().unwrap_or(false);
            let internal = field("internal").as_bool().unwrap_or(false);
            let staff = field("staff").as_bool().unwrap_or(false);
            let open_to_staff = field("open_to_staff").as_bool().unwrap_or(false);
            assert!(!public || permission.is_empty(), "{path} is public and names a permission");
            assert!(
                !staff || (!public && permission.is_empty() && !allow_unscoped && !internal && !open_to_staff),
                "{path} is for staff: no other caller rules"
            );
            // The audit layer records a staff call's reason, in the organization it names.
            assert!(
                !staff || method.input().get_field_by_name("reason").is_some(),
                "{path} is for staff and its request has no `reason`"
            );
            assert!(
                !internal || (!public && permission.is_empty() && !allow_unscoped && !options.has_extension(&http)),
                "{path} is internal: no token rules and no google.api.http binding"
            );
            assert!(
                permission.is_empty()
                    || permission.split_once(':').is_some_and(|(resource, verb)| {
                        !resource.is_empty()
                            && !verb.is_empty()
                            && permission.chars().all(|c| c.is_ascii_lowercase() || c == ':' || c == '_')
                    }),
                "{path}: permission {permission:?} is not resource:verb"
            );
            let permission = if permission.is_empty() { "None".to_string() } else { format!("Some({permission:?})") };
            let edge = options.has_extension(&http);
            // Mutating: bound to any HTTP verb but GET; without a binding (internal calls),
            // unless the name says it reads.
            let mutating = if edge {
                let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                    panic!("{path}: google.api.http is not a message");
                };
                !rule.has_field_by_name("get")
            } else {
                !["Get", "List", "Check", "Search", "Stream", "Watch"]
                    .iter()
                    .any(|verb| method.name().starts_with(verb))
            };
            rows.push(format!(
                "    RpcAccess {{ path: {path:?}, public: {public}, permission: {permission}, allow_unscoped: {allow_unscoped}, internal: {internal}, staff: {staff}, open_to_staff: {open_to_staff}, edge: {edge}, mutating: {mutating} }},"
            ));
        }
    }
    rows.sort();
    let table = format!(
        "/// Generated from the contracts by build.rs; sorted by path.\npub static RPC_ACCESS: &[RpcAccess] = &[\n{}\n];\n",
        rows.join("\n")
    );
    std::fs::write(out.join("rpc_access.rs"), table).expect("writing the access table");
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));

    let mut files = Vec::new();
    for top in ["complianceiq", "google"] {
        println!("cargo:rerun-if-changed={}", root.join(top).display());
        proto_files(&root.join(top), &mut files);
    }
    let relative: Vec<PathBuf> =
        files.iter().map(|file| file.strip_prefix(&root).expect("under the crate").to_path_buf()).collect();

    let mut compiler = protox::Compiler::new([&root]).expect("protox include path");
    compiler.include_imports(true).include_source_info(true);
    if let Err(error) = compiler.open_files(&relative) {
        panic!("the contracts do not compile:\n{error:?}");
    }
    std::fs::write(out_dir.join("file_descriptor_set.bin"), compiler.encode_file_descriptor_set())
        .expect("writing the descriptor set");
    write_access_table(&compiler.descriptor_pool(), &out_dir);

    let mut config = prost_build::Config::new();
    config.include_file("_includes.rs");
    config.service_generator(Box::new(NamedUnimplementedStubs(
        tonic_prost_build::configure().generate_default_stubs(true).service_generator(),
    )));
    config.compile_fds(compiler.file_descriptor_set()).expect("generating Rust code from the contracts");
}
