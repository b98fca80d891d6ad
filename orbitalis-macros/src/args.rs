//! Attribute arguments: `crate = path`, `#[operation(...)]`, `#[sink(...)]`, `#[hook]`, and
//! the marker that keeps an inner attribute in place once its impl's macro has read it.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, LitStr, Meta, Path, Token, parse_quote};

use crate::duration;

/// What a role macro rewrites the arguments of an inner attribute it has read to. The
/// attribute then still resolves (so the user's `use` of it counts as used) and expands
/// to the method unchanged.
const MARKER: &str = "__orbitalis_read";

/// The inner attributes the role macros read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Inner {
    Operation,
    Sink,
    Hook,
}

impl Inner {
    /// Which of ours `attr` is, by its last path segment (`operation` or `orbitalis::operation`).
    pub fn of(attr: &Attribute) -> Option<Inner> {
        let last = attr.path().segments.last()?;
        match last.ident.to_string().as_str() {
            "operation" => Some(Inner::Operation),
            "sink" => Some(Inner::Sink),
            "hook" => Some(Inner::Hook),
            _ => None,
        }
    }
}

/// Replaces `attr`'s arguments with [`MARKER`].
pub fn mark(attr: &mut Attribute) {
    let path = attr.path().clone();
    let marker = Ident::new(MARKER, Span::call_site());
    attr.meta = parse_quote!(#path(#marker));
}

/// The expansion of an inner attribute: the item as is when a role macro marked it, else
/// the item with an error saying where the attribute belongs.
pub fn inert(name: &str, owner: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    if args.to_string() == MARKER {
        return item;
    }
    let message = format!("#[{name}] only works on a method of an impl block marked {owner}: add {owner} to the impl");
    let error = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote!(#error #item)
}

/// The `crate = path` argument of `#[plugin]` / `#[core]`, `::orbitalis` by default.
pub fn crate_path(role: &str, args: TokenStream) -> syn::Result<Path> {
    let mut path = None;
    let parser = syn::meta::parser(|meta| {
        if !meta.path.is_ident("crate") {
            return Err(meta.error(format!("unknown #[{role}] argument: the only one is `crate = path`")));
        }
        if path.is_some() {
            return Err(meta.error("`crate` is given twice"));
        }
        path = Some(path_value(meta.value()?)?);
        Ok(())
    });
    parser.parse2(args)?;
    Ok(path.unwrap_or_else(|| parse_quote!(::orbitalis)))
}

/// A path, written as is or as a string literal (as serde's `crate = "..."`).
pub fn path_value(input: ParseStream) -> syn::Result<Path> {
    if input.peek(LitStr) { input.parse::<LitStr>()?.parse() } else { input.parse() }
}

/// How often a periodic operation runs.
pub enum Period {
    /// A duration literal, checked at compile time.
    Fixed { secs: u64, nanos: u32 },
    /// A `Duration` expression.
    Expr(Box<Expr>),
}

/// The arguments of `#[operation(...)]`.
#[derive(Default)]
pub struct OperationArgs {
    pub name: Option<LitStr>,
    pub policy: Option<Expr>,
    pub period: Option<Period>,
    /// More input types the operation accepts (`accepts = [A, B]`).
    pub accepts: Vec<syn::Type>,
}

impl OperationArgs {
    pub fn parse(attr: &Attribute) -> syn::Result<Self> {
        let mut args = OperationArgs::default();
        match &attr.meta {
            Meta::Path(_) => return Ok(args),
            Meta::NameValue(nv) => {
                return Err(syn::Error::new_spanned(nv, "write #[operation(name = \"...\")], in parentheses"));
            }
            Meta::List(_) => {}
        }
        attr.parse_nested_meta(|meta| {
            let meta_path = &meta.path;
            let key = meta_path.get_ident().map(Ident::to_string).unwrap_or_default();
            let twice = |given: bool| if given { Err(meta.error(format!("`{key}` is given twice"))) } else { Ok(()) };
            match key.as_str() {
                "name" => {
                    twice(args.name.is_some())?;
                    args.name = Some(meta.value()?.parse()?);
                }
                "policy" => {
                    twice(args.policy.is_some())?;
                    args.policy = Some(meta.value()?.parse()?);
                }
                "period" => {
                    twice(args.period.is_some())?;
                    let value = meta.value()?;
                    args.period = Some(if value.peek(LitStr) {
                        let lit: LitStr = value.parse()?;
                        let (secs, nanos) =
                            duration::parse(&lit.value()).map_err(|e| syn::Error::new(lit.span(), e))?;
                        Period::Fixed { secs, nanos }
                    } else {
                        Period::Expr(Box::new(value.parse()?))
                    });
                }
                "accepts" => {
                    twice(!args.accepts.is_empty())?;
                    let value = meta.value()?;
                    let content;
                    syn::bracketed!(content in value);
                    args.accepts
                        .extend(syn::punctuated::Punctuated::<syn::Type, Token![,]>::parse_terminated(&content)?);
                }
                _ => {
                    let shown = quote!(#meta_path).to_string().replace(' ', "");
                    return Err(meta.error(format!(
                        "unknown #[operation] argument `{shown}`: expected `name`, `policy`, `period` or `accepts`"
                    )));
                }
            }
            Ok(())
        })?;
        Ok(args)
    }
}

/// The operation of `#[sink("op")]` or `#[sink(operation = "op")]`.
pub fn sink_operation(attr: &Attribute) -> syn::Result<LitStr> {
    let missing = || {
        syn::Error::new_spanned(
            attr,
            "#[sink] needs the operation whose outputs it receives: #[sink(\"operation\")] or \
             #[sink(operation = \"operation\")]",
        )
    };
    let list = match &attr.meta {
        Meta::List(list) if !list.tokens.is_empty() => list,
        _ => return Err(missing()),
    };
    list.parse_args_with(|input: ParseStream| {
        let lit = if input.peek(LitStr) {
            input.parse::<LitStr>()?
        } else {
            let key = input.call(Ident::parse_any)?;
            if key != "operation" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown #[sink] argument `{key}`: expected \"operation\" or operation = \"operation\""),
                ));
            }
            input.parse::<Token![=]>()?;
            input.parse::<LitStr>()?
        };
        input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(input.error("#[sink] takes one operation; give each operation its own sink method"));
        }
        Ok(lit)
    })
}

/// Checks that `#[hook]` has no arguments.
pub fn hook(attr: &Attribute) -> syn::Result<()> {
    match &attr.meta {
        Meta::Path(_) => Ok(()),
        other => {
            Err(syn::Error::new(other.span(), "#[hook] takes no arguments: the method's name says which hook it is"))
        }
    }
}
