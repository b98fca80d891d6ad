//! `#[hook]` methods: checked against the trait method of their name and wired to it by a
//! delegating trait method.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{FnArg, ImplItemFn, Path};

use crate::method::{Errors, Output};

/// A hook of `Plugin` or `Core`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnEvent,
    OnTick,
    OnSetup,
    SetupData,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::OnEvent => "on_event",
            Hook::OnTick => "on_tick",
            Hook::OnSetup => "on_setup",
            Hook::SetupData => "setup_data",
        }
    }

    /// The method's signature, as users write it.
    fn signature(self) -> &'static str {
        match self {
            Hook::OnEvent => "async fn on_event(&self, event: OrbiterEvent)",
            Hook::OnTick => "async fn on_tick(&self)",
            Hook::OnSetup => {
                "async fn on_setup(&self, operation: &Identifier, core: &Identifier, data: &Bytes) -> Result<(), E>"
            }
            Hook::SetupData => "fn setup_data(&self, operation: &Identifier, plugin: &Identifier) -> Option<Bytes>",
        }
    }

    fn arity(self) -> usize {
        match self {
            Hook::OnEvent => 1,
            Hook::OnTick => 0,
            Hook::OnSetup => 3,
            Hook::SetupData => 2,
        }
    }
}

/// A checked hook method.
pub struct Wired {
    hook: Hook,
    method: syn::Ident,
    awaited: bool,
    output: Output,
}

/// Checks `f` as one of the `valid` hooks of `role`.
pub fn check(f: &ImplItemFn, valid: &[Hook], role: &str, errors: &mut Errors) -> Option<Wired> {
    let sig = &f.sig;
    let Some(hook) = valid.iter().copied().find(|h| sig.ident == h.name()) else {
        let names: Vec<_> = valid.iter().map(|h| format!("`{}`", h.name())).collect();
        errors.at(
            &sig.ident,
            format!(
                "`{}` is not a hook of {role}: a #[hook] method is named {} or {}",
                sig.ident,
                names[..names.len() - 1].join(", "),
                names[names.len() - 1]
            ),
        );
        return None;
    };
    let expected = || format!("the {} hook is `{}`", hook.name(), hook.signature());
    let receiver = matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none());
    let arity = sig.inputs.iter().filter(|a| matches!(a, FnArg::Typed(_))).count();
    if !receiver || arity != hook.arity() || !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(sig.paren_token.span.join(), expected()));
        return None;
    }
    let output = Output::of(&sig.output);
    let shape_ok = match hook {
        Hook::OnEvent | Hook::OnTick => matches!(output, Output::Unit),
        Hook::OnSetup => output.is_unit(),
        Hook::SetupData => matches!(output, Output::Value(_)),
    };
    if !shape_ok {
        errors.at(&sig.output, expected());
        return None;
    }
    if hook == Hook::SetupData && sig.asyncness.is_some() {
        errors.at(sig.asyncness, "the setup_data hook runs on the orbiter's task: it cannot be `async`, keep it quick");
        return None;
    }
    Some(Wired { hook, method: sig.ident.clone(), awaited: sig.asyncness.is_some(), output })
}

/// The trait methods delegating to `wired` (inside an `#[async_trait]` impl).
pub fn trait_methods(wired: &[Wired], krate: &Path) -> TokenStream {
    wired
        .iter()
        .map(|w| {
            let method = &w.method;
            let await_ = w.awaited.then(|| quote!(.await));
            match w.hook {
                Hook::OnEvent => quote_spanned! {method.span()=>
                    async fn on_event(&self, event: #krate::OrbiterEvent) {
                        Self::#method(self, event)#await_
                    }
                },
                Hook::OnTick => quote_spanned! {method.span()=>
                    async fn on_tick(&self) {
                        Self::#method(self)#await_
                    }

                    fn wants_tick(&self) -> bool {
                        true
                    }
                },
                Hook::OnSetup => {
                    let result = w.output.to_result(quote!(Self::#method(self, operation, core, data)#await_), krate);
                    quote_spanned! {method.span()=>
                        async fn on_setup(
                            &self,
                            operation: &#krate::Identifier,
                            core: &#krate::Identifier,
                            data: &#krate::Bytes,
                        ) -> ::core::result::Result<(), #krate::OperationError> {
                            #result
                        }
                    }
                }
                Hook::SetupData => quote_spanned! {method.span()=>
                    fn setup_data(
                        &self,
                        operation: &#krate::Identifier,
                        plugin: &#krate::Identifier,
                    ) -> ::core::option::Option<#krate::Bytes> {
                        Self::#method(self, operation, plugin)
                    }
                },
            }
        })
        .collect()
}
