//! `#[core]`: the `#[sink]` and `#[hook]` methods of an inherent impl block become the
//! type's `Core` impl.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, ImplItem, ImplItemFn, Path};

use crate::args::{self, Inner};
use crate::block::{self, Role};
use crate::hooks::{self, Hook};
use crate::method::{self, Errors, Output, Rules};

const ROLE: Role = Role { attribute: "core", trait_name: "Core" };

const RULES: Rules = Rules { method: "a #[sink] method", context: "SinkContext", value: "output" };

const HOOKS: [Hook; 3] = [Hook::OnEvent, Hook::OnTick, Hook::SetupData];

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut block = match ROLE.impl_block(item.clone()) {
        Ok(block) => block,
        Err(e) => return Role::refuse(e, item),
    };
    let mut errors = Errors::default();
    let krate = args::crate_path("core", args).unwrap_or_else(|e| {
        errors.push(e);
        syn::parse_quote!(::orbitalis)
    });
    let mut sinks = Vec::new();
    let mut operations = Vec::new();
    let mut wired = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(f) = item else { continue };
        let (sink, hook) = split(block::take_inner(f), &mut errors);
        match (sink, hook) {
            (Some(attr), Some(_)) => errors.at(attr, "a method is a #[sink] or a #[hook], not both"),
            (Some(attr), None) => {
                if let Some((operation, tokens)) = build(f, &attr, &krate, &mut errors) {
                    block::check_unique(&mut operations, &operation, &f.sig.ident, "the sink of", &mut errors);
                    sinks.push(tokens);
                }
            }
            (None, Some(_)) => wired.extend(hooks::check(f, &HOOKS, "a core", &mut errors)),
            (None, None) => {}
        }
    }
    let sinks = (!sinks.is_empty()).then(|| {
        quote! {
            fn sinks(
                self: ::std::sync::Arc<Self>,
            ) -> ::std::vec::Vec<(::std::string::String, #krate::Sink)> {
                ::std::vec![#(#sinks),*]
            }
        }
    });
    let hooks = hooks::trait_methods(&wired, &krate);
    ROLE.finish(&block, &krate, quote!(#sinks #hooks), errors)
}

/// The method's `#[sink]` and `#[hook]` attributes; an `#[operation]` is an error here.
fn split(found: Vec<(Inner, Attribute)>, errors: &mut Errors) -> (Option<Attribute>, Option<Attribute>) {
    let (mut sink, mut hook) = (None, None);
    for (kind, attr) in found {
        let slot = match kind {
            Inner::Sink => &mut sink,
            Inner::Hook => {
                if let Err(e) = args::hook(&attr) {
                    errors.push(e);
                }
                &mut hook
            }
            Inner::Operation => {
                errors.at(&attr, "#[operation] belongs in a #[plugin] impl: a core receives outputs in #[sink]s");
                continue;
            }
        };
        if slot.is_some() {
            errors.at(&attr, "this attribute is given twice on the method");
        } else {
            *slot = Some(attr);
        }
    }
    (sink, hook)
}

/// The sink's operation and the `(operation, Sink)` pair expression.
fn build(f: &ImplItemFn, attr: &Attribute, krate: &Path, errors: &mut Errors) -> Option<(syn::LitStr, TokenStream)> {
    let operation = args::sink_operation(attr).map_err(|e| errors.push(e)).ok()?;
    let sig = &f.sig;
    let params = method::params(sig, &RULES, errors);
    if !matches!(Output::of(&sig.output), Output::Unit) {
        errors.at(&sig.output, "a #[sink] method returns nothing: no one receives what a sink returns");
    }
    let (value, context) = (quote!(output), quote!(ctx));
    let call = method::call(&sig.ident, &quote!(&*this), &params, &value, &context);
    let (output_pattern, output_type, context_pattern) =
        method::closure_params(&params, &value, &context, quote!(#krate::Empty));
    let checks = method::data_checks(method::value_type(&params), krate);
    let tokens = quote! {
        (::std::string::String::from(#operation), {
            #checks
            let this = ::std::sync::Arc::clone(&self);
            #krate::Sink::new(move |#output_pattern: #output_type, #context_pattern: #krate::SinkContext| {
                let this = ::std::sync::Arc::clone(&this);
                async move {
                    #call;
                }
            })
        })
    };
    Some((operation, tokens))
}
