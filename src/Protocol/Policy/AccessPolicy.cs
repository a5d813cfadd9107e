using System.Diagnostics.CodeAnalysis;

namespace SecureChannels.Protocol.Policy;

/// <summary>The outcome of evaluating a policy. <see cref="Deny"/> is the zero value, so an uninitialised decision denies.</summary>
public enum PolicyDecision
{
    /// <summary>The channel (or message) must be refused.</summary>
    Deny = 0,

    /// <summary>The policy's expression is definitely true for this input.</summary>
    Allow = 1,
}

/// <summary>
/// A compiled attribute-based access policy: decides whether a peer may open a channel (or send a message) from
/// its verified attributes and the application context. Deny by default: only an expression that is definitely
/// true allows. Immutable and thread-safe; evaluation allocates nothing.
/// </summary>
/// <remarks>See <see cref="Parse"/> for the language and <c>src/Protocol/Policy/README.md</c> for examples.</remarks>
public sealed class AccessPolicy
{
    /// <summary>
    /// Longest accepted policy text, in UTF-16 code units (16 KiB). Far beyond any hand-written policy; it bounds
    /// parse time and the size of the compiled tree, and the parser never reads past it.
    /// </summary>
    public const int MaxTextLength = 16 * 1024;

    /// <summary>
    /// Deepest accepted nesting of parentheses and <c>!</c> together. Readable policies stay in single digits; the
    /// bound keeps the recursive parser and evaluator to a few hundred stack frames on hostile input.
    /// </summary>
    public const int MaxNestingDepth = 64;

    /// <summary>
    /// Most items in one list literal. An allow-list longer than this belongs in a set-valued attribute the input
    /// supplies (<c>"x" in context.allowed</c>), where it can change without redeploying policy text.
    /// </summary>
    public const int MaxListLength = 256;

    private readonly PolicyNode _root;

    private AccessPolicy(string text, PolicyNode root)
    {
        Text = text;
        _root = root;
    }

    /// <summary>The policy text this was compiled from, unchanged.</summary>
    public string Text { get; }

    /// <summary>Compiles a policy text, or throws an exception that says what is wrong and where.</summary>
    /// <remarks>
    /// <para>The grammar, in ISO EBNF. Whitespace (space, tab, CR, LF) may separate any two tokens.</para>
    /// <code>
    /// policy      = expression ;
    /// expression  = conjunction , { "||" , conjunction } ;
    /// conjunction = unary , { "&amp;&amp;" , unary } ;
    /// unary       = { "!" } , primary ;
    /// primary     = "(" , expression , ")"
    ///             | "has" , "(" , name , ")"
    ///             | condition ;
    /// condition   = operand , [ compare-op , operand | "in" , ( list | name ) ] ;
    /// compare-op  = "==" | "!=" | "&lt;" | "&lt;=" | "&gt;" | "&gt;=" ;
    /// operand     = name | string | integer | "true" | "false" ;
    /// list        = "[" , [ item , { "," , item } ] , "]" ;
    /// item        = string | integer ;
    ///
    /// name        = first-part , { "." , part } ;   (* but not a keyword: true false in has *)
    /// first-part  = ( lower | "_" ) , { lower | digit | "_" } ;
    /// part        = ( lower | "_" ) , { lower | digit | "_" | "-" } ;
    /// string      = '"' , { character - ( '"' | "\" | control ) | '\"' | "\\" } , '"' ;
    /// integer     = digit , { digit } ;              (* at most 9223372036854775807 *)
    /// lower       = "a" | ... | "z" ;
    /// digit       = "0" | ... | "9" ;
    /// </code>
    /// <para>
    /// Precedence, loosest first: <c>||</c>, <c>&amp;&amp;</c>, <c>!</c>, then comparisons (which do not chain).
    /// Evaluation is three-valued: a comparison involving a missing name, or values of mismatched types, is
    /// <em>Unknown</em>. <c>!Unknown</c> is Unknown, <c>Unknown &amp;&amp; false</c> is false,
    /// <c>Unknown || true</c> is true, and a policy that ends Unknown denies; so negation never turns a missing
    /// attribute into an allow. <c>has(name)</c> is never Unknown: it is true exactly when the name has a value.
    /// </para>
    /// <para>
    /// Comparisons: <c>==</c> is true for equal strings (ordinal), integers or booleans, and for a string and a
    /// set holding only that string; <c>!=</c> is its negation. Ordering operators compare integers only.
    /// <c>x in [list]</c> is true when a string or integer <c>x</c> is an item, or a set <c>x</c> is non-empty
    /// and all its elements are items. <c>x in name</c> is the same against the name's set (a string counts as a
    /// one-element set). A bare name is a condition when it holds a boolean. Literal-only comparisons whose types
    /// can never match are rejected with <see cref="PolicyErrorCode.TypeMismatch"/>.
    /// </para>
    /// <para>
    /// Limits: <see cref="MaxTextLength"/>, <see cref="MaxNestingDepth"/>, <see cref="MaxListLength"/>. Errors are
    /// reported at the first position where the text stops being the start of a valid policy.
    /// </para>
    /// </remarks>
    /// <param name="text">The policy text.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="PolicySyntaxException">The text is not a valid policy; <see cref="PolicySyntaxException.Code"/> says why.</exception>
    public static AccessPolicy Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new AccessPolicy(text, PolicyParser.Parse(text));
    }

    /// <summary>Compiles a policy text like <see cref="Parse"/>, returning the error instead of throwing it.</summary>
    /// <param name="text">The policy text.</param>
    /// <param name="policy">The compiled policy, or null on error.</param>
    /// <param name="error">What is wrong and where, or null on success.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    public static bool TryParse(string text, [NotNullWhen(true)] out AccessPolicy? policy, [NotNullWhen(false)] out PolicySyntaxException? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            policy = new AccessPolicy(text, PolicyParser.Parse(text));
            error = null;
            return true;
        }
        catch (PolicySyntaxException exception)
        {
            policy = null;
            error = exception;
            return false;
        }
    }

    /// <summary>
    /// <see cref="PolicyDecision.Allow"/> only when the policy is definitely true for <paramref name="input"/>.
    /// Never throws: a null input denies, and so does a lookup the evaluation makes that throws or reports a
    /// name as present with <c>default(PolicyValue)</c>. Only names the result depends on are looked up, in
    /// order, stopping once the result is decided (<c>true || x</c> never reads <c>x</c>).
    /// </summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "A failing input must deny, never propagate into the channel code.")]
    public PolicyDecision Evaluate(IPolicyInput input)
    {
        if (input is null)
        {
            return PolicyDecision.Deny;
        }

        try
        {
            return _root.Evaluate(input) == Truth.True ? PolicyDecision.Allow : PolicyDecision.Deny;
        }
        catch (Exception)
        {
            // The decision is deny-by-default; an input we could not read fully cannot prove an allow.
            return PolicyDecision.Deny;
        }
    }

    /// <summary>Evaluates <paramref name="policy"/>, or denies when there is none: no policy means no access.</summary>
    public static PolicyDecision EvaluateOrDeny(AccessPolicy? policy, IPolicyInput input) =>
        policy is null ? PolicyDecision.Deny : policy.Evaluate(input);

    /// <summary>The policy text.</summary>
    public override string ToString() => Text;
}
