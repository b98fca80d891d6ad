//! `#[derive(Message)]`: `orbitalis::impl_message!` for the type, so that a message needs
//! only derives.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::args;

pub fn expand(item: TokenStream) -> TokenStream {
    match derive(item) {
        Ok(tokens) => tokens,
        Err(e) => e.to_compile_error(),
    }
}

fn derive(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    let mut krate = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("crate") {
                return Err(meta.error("unknown #[message] argument: the only one is `crate = path`"));
            }
            if krate.is_some() {
                return Err(meta.error("`crate` is given twice"));
            }
            krate = Some(args::path_value(meta.value()?)?);
            Ok(())
        })?;
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "a Message cannot be generic: its schema and codec are built once per type and kept in statics",
        ));
    }
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::orbitalis));
    let ident = &input.ident;
    Ok(quote!(#krate::impl_message!(#ident);))
}
