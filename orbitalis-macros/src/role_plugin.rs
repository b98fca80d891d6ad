//! `#[plugin]`: the `#[operation]` and `#[hook]` methods of an inherent impl block become
//! the type's `Plugin` impl.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Attribute, ImplItem, ImplItemFn, Path, ReturnType};

use crate::args::{self, Inner, OperationArgs, Period};
use crate::block::{self, Role};
use crate::hooks::{self, Hook};
use crate::method::{self, Errors, Kind, Output, Param, Rules};

const ROLE: Role = Role { attribute: "plugin", trait_name: "Plugin" };

const RULES: Rules = Rules { method: "an #[operation] method", context: "OperationContext", value: "input" };

const HOOKS: [Hook; 3] = [Hook::OnEvent, Hook::OnTick, Hook::OnSetup];

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut block = match ROLE.impl_block(item.clone()) {
        Ok(block) => block,
        Err(e) => return Role::refuse(e, item),
    };
    let mut errors = Errors::default();
    let krate = args::crate_path("plugin", args).unwrap_or_else(|e| {
        errors.push(e);
        syn::parse_quote!(::orbitalis)
    });
    let mut operations = Vec::new();
    let mut names = Vec::new();
    let mut wired = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(f) = item else { continue };
        let (operation, hook) = split(block::take_inner(f), &mut errors);
        match (operation, hook) {
            (Some(attr), Some(_)) => errors.at(attr, "a method is an #[operation] or a #[hook], not both"),
            (Some(attr), None) => {
                if let Some((name, tokens)) = build(f, &attr, &krate, &mut errors) {
                    block::check_unique(&mut names, &name, &f.sig.ident, "operation", &mut errors);
                    operations.push(tokens);
                }
            }
            (None, Some(_)) => wired.extend(hooks::check(f, &HOOKS, "a plugin", &mut errors)),
            (None, None) => {}
        }
    }
    let operations = (!operations.is_empty()).then(|| {
        quote! {
            fn operations(self: ::std::sync::Arc<Self>) -> ::std::vec::Vec<#krate::Operation> {
                ::std::vec![#(#operations),*]
            }
        }
    });
    let hooks = hooks::trait_methods(&wired, &krate);
    ROLE.finish(&block, &krate, quote!(#operations #hooks), errors)
}

/// The method's `#[operation]` and `#[hook]` attributes; a `#[sink]` is an error here.
fn split(found: Vec<(Inner, Attribute)>, errors: &mut Errors) -> (Option<Attribute>, Option<Attribute>) {
    let (mut operation, mut hook) = (None, None);
    for (kind, attr) in found {
        let slot = match kind {
            Inner::Operation => &mut operation,
            Inner::Hook => {
                if let Err(e) = args::hook(&attr) {
                    errors.push(e);
                }
                &mut hook
            }
            Inner::Sink => {
                errors.at(&attr, "#[sink] belongs in a #[core] impl: a plugin declares #[operation]s");
                continue;
            }
        };
        if slot.is_some() {
            errors.at(&attr, "this attribute is given twice on the method");
        } else {
            *slot = Some(attr);
        }
    }
    (operation, hook)
}

/// The operation's name and the expression building it.
fn build(f: &ImplItemFn, attr: &Attribute, krate: &Path, errors: &mut Errors) -> Option<(syn::LitStr, TokenStream)> {
    let args = OperationArgs::parse(attr).map_err(|e| errors.push(e)).ok()?;
    let sig = &f.sig;
    let params = method::params(sig, &RULES, errors);
    let output = Output::of(&sig.output);
    let name = block::name_of(args.name.as_ref(), &sig.ident);
    let accepts = &args.accepts;
    let policy = args.policy.as_ref().map(|p| quote!(.policy(#p)));
    let policy = quote!(#(.accepts::<#accepts>())* #policy);
    let this = quote!(&*this);
    let (value, context) = (quote!(input), quote!(ctx));
    let call = method::call(&sig.ident, &this, &params, &value, &context);
    let result = output.to_result(call, krate);
    let checks = method::data_checks(method::value_type(&params).into_iter().chain(output.value()), krate);
    let tokens = match &args.period {
        Some(period) => {
            periodic_checks(sig, &params, &output, errors);
            let period = match period {
                Period::Fixed { secs, nanos } => quote!(::core::time::Duration::new(#secs, #nanos)),
                Period::Expr(e) => e.to_token_stream(),
            };
            quote! {{
                #checks
                let this = ::std::sync::Arc::clone(&self);
                #krate::Operation::periodic(#name, #period, move || {
                    let this = ::std::sync::Arc::clone(&this);
                    async move { #result }
                })#policy
            }}
        }
        None => {
            let (input_pattern, input_type, context_pattern) =
                method::closure_params(&params, &value, &context, quote!(#krate::Empty));
            let constructor = if output.is_unit() { quote!(procedure) } else { quote!(new) };
            quote! {{
                #checks
                let this = ::std::sync::Arc::clone(&self);
                #krate::Operation::#constructor(
                    #name,
                    move |#input_pattern: #input_type, #context_pattern: #krate::OperationContext| {
                        let this = ::std::sync::Arc::clone(&this);
                        async move { #result }
                    },
                )#policy
            }}
        }
    };
    Some((name, tokens))
}

/// A periodic operation produces its value from nothing, with no one calling.
fn periodic_checks(sig: &syn::Signature, params: &[Param], output: &Output, errors: &mut Errors) {
    for param in params {
        let message = match param.kind {
            Kind::Value(_) => {
                "a periodic operation takes no input: it produces a value each period; remove this parameter \
                 or the `period`"
            }
            Kind::Context(_) => {
                "a periodic operation has no OperationContext: no core calls it; remove this parameter or the \
                 `period`"
            }
        };
        errors.at(&param.tokens, message);
    }
    if output.is_unit() {
        let message = "a periodic operation returns the value it pushes to the cores each period";
        match &sig.output {
            ReturnType::Default => errors.at(&sig.ident, message),
            ret => errors.at(ret, message),
        }
    }
}
