using System.Collections.Frozen;
using System.Collections.Immutable;

namespace SecureChannels.Protocol.Noise;

/// <summary>A token of a handshake pattern (spec §7.1).</summary>
public enum NoiseToken
{
    /// <summary><c>e</c>: the sender's ephemeral public key, in clear.</summary>
    E,

    /// <summary><c>s</c>: the sender's static public key, encrypted once a key exists.</summary>
    S,

    /// <summary><c>ee</c>: DH(initiator ephemeral, responder ephemeral).</summary>
    EE,

    /// <summary><c>es</c>: DH(initiator ephemeral, responder static).</summary>
    ES,

    /// <summary><c>se</c>: DH(initiator static, responder ephemeral).</summary>
    SE,

    /// <summary><c>ss</c>: DH(initiator static, responder static).</summary>
    SS,

    /// <summary><c>psk</c>: mixes the next pre-shared key (spec §9).</summary>
    Psk,
}

/// <summary>One message of a handshake pattern: who sends it and its tokens.</summary>
/// <param name="FromInitiator">True for <c>-&gt;</c> (initiator to responder), false for <c>&lt;-</c>.</param>
/// <param name="Tokens">The tokens, in order.</param>
public readonly record struct MessagePattern(bool FromInitiator, ImmutableArray<NoiseToken> Tokens);

/// <summary>
/// A handshake pattern with its modifiers applied (spec §7, §9, §10.2): pre-messages and message patterns.
/// Every pattern of the specification is in the table, written in the specification's own notation.
/// </summary>
public sealed class HandshakePattern
{
    private static readonly FrozenDictionary<string, string> Notation = new Dictionary<string, string>
    {
        // One-way (spec §7.4).
        ["N"] = "<- s ... -> e, es",
        ["K"] = "-> s <- s ... -> e, es, ss",
        ["X"] = "<- s ... -> e, es, s, ss",

        // Fundamental interactive (spec §7.5).
        ["NN"] = "-> e <- e, ee",
        ["NK"] = "<- s ... -> e, es <- e, ee",
        ["NX"] = "-> e <- e, ee, s, es",
        ["KN"] = "-> s ... -> e <- e, ee, se",
        ["KK"] = "-> s <- s ... -> e, es, ss <- e, ee, se",
        ["KX"] = "-> s ... -> e <- e, ee, se, s, es",
        ["XN"] = "-> e <- e, ee -> s, se",
        ["XK"] = "<- s ... -> e, es <- e, ee -> s, se",
        ["XX"] = "-> e <- e, ee, s, es -> s, se",
        ["IN"] = "-> e, s <- e, ee, se",
        ["IK"] = "<- s ... -> e, es, s, ss <- e, ee, se",
        ["IX"] = "-> e, s <- e, ee, se, s, es",

        // Deferred (spec §7.6).
        ["NK1"] = "<- s ... -> e <- e, ee, es",
        ["NX1"] = "-> e <- e, ee, s -> es",
        ["X1N"] = "-> e <- e, ee -> s <- se",
        ["X1K"] = "<- s ... -> e, es <- e, ee -> s <- se",
        ["XK1"] = "<- s ... -> e <- e, ee, es -> s, se",
        ["X1K1"] = "<- s ... -> e <- e, ee, es -> s <- se",
        ["X1X"] = "-> e <- e, ee, s, es -> s <- se",
        ["XX1"] = "-> e <- e, ee, s -> es, s, se",
        ["X1X1"] = "-> e <- e, ee, s -> es, s <- se",
        ["K1N"] = "-> s ... -> e <- e, ee -> se",
        ["K1K"] = "-> s <- s ... -> e, es <- e, ee -> se",
        ["KK1"] = "-> s <- s ... -> e <- e, ee, se, es",
        ["K1K1"] = "-> s <- s ... -> e <- e, ee, es -> se",
        ["K1X"] = "-> s ... -> e <- e, ee, s, es -> se",
        ["KX1"] = "-> s ... -> e <- e, ee, se, s -> es",
        ["K1X1"] = "-> s ... -> e <- e, ee, s -> se, es",
        ["I1N"] = "-> e, s <- e, ee -> se",
        ["I1K"] = "<- s ... -> e, es, s <- e, ee -> se",
        ["IK1"] = "<- s ... -> e, s <- e, ee, se, es",
        ["I1K1"] = "<- s ... -> e, s <- e, ee, es -> se",
        ["I1X"] = "-> e, s <- e, ee, s, es -> se",
        ["IX1"] = "-> e, s <- e, ee, se, s -> es",
        ["I1X1"] = "-> e, s <- e, ee, s -> se, es",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private HandshakePattern(
        string name,
        ImmutableArray<NoiseToken> initiatorPreMessage,
        ImmutableArray<NoiseToken> responderPreMessage,
        ImmutableArray<MessagePattern> messages,
        bool isOneWay,
        bool isFallback = false)
    {
        Name = name;
        IsFallback = isFallback;
        InitiatorPreMessage = initiatorPreMessage;
        ResponderPreMessage = responderPreMessage;
        Messages = messages;
        IsOneWay = isOneWay;
        PskCount = messages.Sum(m => m.Tokens.Count(t => t == NoiseToken.Psk));
    }

    /// <summary>The names of every base pattern (without modifiers) this implementation knows.</summary>
    public static IEnumerable<string> BaseNames => Notation.Keys;

    /// <summary>The pattern's name with its modifiers, as in a protocol name (for example <c>XXpsk0+psk2</c>).</summary>
    public string Name { get; }

    /// <summary>Tokens the initiator is known to have sent before the handshake (empty, <c>e</c>, <c>s</c> or <c>e, s</c>).</summary>
    public ImmutableArray<NoiseToken> InitiatorPreMessage { get; }

    /// <summary>Tokens the responder is known to have sent before the handshake.</summary>
    public ImmutableArray<NoiseToken> ResponderPreMessage { get; }

    /// <summary>The handshake messages, in order.</summary>
    public ImmutableArray<MessagePattern> Messages { get; }

    /// <summary>True for N, K and X: only the initiator ever sends, before and after the handshake.</summary>
    public bool IsOneWay { get; }

    /// <summary>True when the <c>fallback</c> modifier made the initiator's first message a pre-message (spec §10.2).</summary>
    public bool IsFallback { get; }

    /// <summary>How many pre-shared keys the pattern mixes (one per <c>psk</c> modifier).</summary>
    public int PskCount { get; }

    /// <summary>
    /// Parses a pattern name with modifiers, for example <c>IK</c>, <c>XXfallback</c>, <c>NNpsk0+psk2</c>.
    /// </summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.InvalidProtocolName"/> with the reason.</exception>
    public static HandshakePattern Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var baseLength = 0;
        while (baseLength < name.Length && (char.IsAsciiLetterUpper(name[baseLength]) || char.IsAsciiDigit(name[baseLength])))
        {
            baseLength++;
        }

        var baseName = name[..baseLength];
        if (!Notation.TryGetValue(baseName, out var notation))
        {
            throw Invalid($"unknown handshake pattern '{baseName}'");
        }

        var pattern = FromNotation(baseName, notation);
        if (baseLength == name.Length)
        {
            return pattern;
        }

        var modifiers = name[baseLength..].Split('+');
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lastPsk = -1;
        foreach (var modifier in modifiers)
        {
            if (!seen.Add(modifier))
            {
                throw Invalid($"modifier '{modifier}' appears twice");
            }

            pattern = pattern.Apply(modifier);

            // Pre-shared keys are supplied in modifier order and used in token order; requiring ascending
            // psk modifiers makes the two the same, as every other implementation assumes.
            if (modifier.StartsWith("psk", StringComparison.Ordinal))
            {
                var position = int.Parse(modifier.AsSpan(3), System.Globalization.CultureInfo.InvariantCulture);
                if (position <= lastPsk)
                {
                    throw Invalid($"psk modifiers must be in ascending order; '{modifier}' follows psk{lastPsk}");
                }

                lastPsk = position;
            }
        }

        return pattern;
    }

    private HandshakePattern With(
        ImmutableArray<NoiseToken>? initiatorPreMessage = null,
        ImmutableArray<MessagePattern>? messages = null,
        string? modifier = null,
        bool fallback = false)
    {
        var name = modifier is null ? Name : Name + (Name.Any(char.IsAsciiLetterLower) ? "+" : string.Empty) + modifier;
        return new HandshakePattern(name, initiatorPreMessage ?? InitiatorPreMessage, ResponderPreMessage, messages ?? Messages, IsOneWay, IsFallback || fallback);
    }

    private HandshakePattern Apply(string modifier)
    {
        if (modifier == "fallback")
        {
            return ApplyFallback();
        }

        if (modifier.StartsWith("psk", StringComparison.Ordinal)
            && modifier.Length > 3
            && modifier.AsSpan(3).IndexOfAnyExceptInRange('0', '9') < 0
            && (modifier.Length == 4 || modifier[3] != '0')
            && int.TryParse(modifier.AsSpan(3), out var position))
        {
            return ApplyPsk(modifier, position);
        }

        throw Invalid($"unknown modifier '{modifier}'");
    }

    // psk0 goes at the start of the first message; pskN (N >= 1) at the end of message N (spec §9.2).
    private HandshakePattern ApplyPsk(string modifier, int position)
    {
        if (position > Messages.Length)
        {
            throw Invalid($"'{modifier}' names message {position} but the pattern has {Messages.Length}");
        }

        var index = position == 0 ? 0 : position - 1;
        var message = Messages[index];
        var tokens = position == 0 ? message.Tokens.Insert(0, NoiseToken.Psk) : message.Tokens.Add(NoiseToken.Psk);
        return With(messages: Messages.SetItem(index, message with { Tokens = tokens }), modifier: modifier);
    }

    // fallback turns the initiator's first message into a pre-message (spec §10.2); what remains is
    // sent starting with the responder, while the token meanings stay tied to the original roles.
    private HandshakePattern ApplyFallback()
    {
        if (IsOneWay || Messages.Length < 2 || !InitiatorPreMessage.IsEmpty)
        {
            throw Invalid($"'fallback' does not apply to {Name}");
        }

        var first = Messages[0].Tokens;
        var isPreMessageShaped = first.SequenceEqual([NoiseToken.E]) || first.SequenceEqual([NoiseToken.S]) || first.SequenceEqual([NoiseToken.E, NoiseToken.S]);
        if (!isPreMessageShaped)
        {
            throw Invalid($"'fallback' needs a first message of e, s or e, s; {Name} has another");
        }

        return With(initiatorPreMessage: first, messages: Messages.RemoveAt(0), modifier: "fallback", fallback: true);
    }

    private static HandshakePattern FromNotation(string name, string notation)
    {
        var parts = notation.Split("...", StringSplitOptions.TrimEntries);
        var preMessages = parts.Length == 2 ? ParseMessages(parts[0]) : [];
        var messages = ParseMessages(parts[^1]);
        var initiatorPre = preMessages.Where(m => m.FromInitiator).SelectMany(m => m.Tokens).ToImmutableArray();
        var responderPre = preMessages.Where(m => !m.FromInitiator).SelectMany(m => m.Tokens).ToImmutableArray();
        return new HandshakePattern(name, initiatorPre, responderPre, messages, isOneWay: name.Length == 1);
    }

    // The notation is words: an arrow starts a message, every other word (less its comma) is a token.
    private static ImmutableArray<MessagePattern> ParseMessages(string text)
    {
        var result = ImmutableArray.CreateBuilder<MessagePattern>();
        var fromInitiator = false;
        var tokens = ImmutableArray.CreateBuilder<NoiseToken>();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (word is "->" or "<-")
            {
                if (result.Count > 0 || tokens.Count > 0)
                {
                    result.Add(new MessagePattern(fromInitiator, tokens.DrainToImmutable()));
                }

                fromInitiator = word == "->";
                continue;
            }

            tokens.Add(ParseToken(word.TrimEnd(',')));
        }

        result.Add(new MessagePattern(fromInitiator, tokens.DrainToImmutable()));
        return result.ToImmutable();
    }

    private static NoiseToken ParseToken(string token) => token switch
    {
        "e" => NoiseToken.E,
        "s" => NoiseToken.S,
        "ee" => NoiseToken.EE,
        "es" => NoiseToken.ES,
        "se" => NoiseToken.SE,
        "ss" => NoiseToken.SS,
        "psk" => NoiseToken.Psk,
        _ => throw new InvalidOperationException($"The pattern table has an unknown token '{token}'."),
    };

    private static NoiseException Invalid(string reason) => new(NoiseErrorKind.InvalidProtocolName, $"Invalid handshake pattern: {reason}.");

    /// <inheritdoc />
    public override string ToString() => Name;
}
