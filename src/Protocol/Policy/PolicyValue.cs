using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace SecureChannels.Protocol.Policy;

/// <summary>The type of a <see cref="PolicyValue"/>.</summary>
public enum PolicyValueKind
{
    /// <summary>
    /// No value: what <c>default(PolicyValue)</c> holds. An input that reports a name as present but hands this
    /// out is broken, and an evaluation that meets it denies as a whole (see <see cref="AccessPolicy.Evaluate"/>).
    /// </summary>
    None = 0,

    /// <summary>A string, compared ordinally (byte-for-byte on UTF-16 code units, no culture, case-sensitive).</summary>
    [SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The kinds are named after the policy language's value types.")]
    String,

    /// <summary>A 64-bit signed integer. The only kind the ordering operators accept.</summary>
    [SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The kinds are named after the policy language's value types.")]
    Integer,

    /// <summary>A boolean.</summary>
    Boolean,

    /// <summary>A set of strings, for example the effective roles granted by a peer's credentials. May be empty.</summary>
    StringSet,
}

/// <summary>
/// One attribute value as the policy sees it: a string, an integer, a boolean or a set of strings. Immutable, so a
/// value built once can be shared by every evaluation on every thread.
/// </summary>
/// <remarks>
/// Sets are copied on creation and kept sorted ordinally without duplicates: the caller cannot change them
/// afterwards, and evaluation can search and merge them without allocating.
/// </remarks>
public readonly struct PolicyValue : IEquatable<PolicyValue>
{
    // String: the string. StringSet: a string[] sorted ordinally with no duplicates, never handed out mutable.
    private readonly object? _reference;

    // Integer: the value. Boolean: 1 for true, 0 for false.
    private readonly long _number;

    private PolicyValue(PolicyValueKind kind, object? reference, long number)
    {
        Kind = kind;
        _reference = reference;
        _number = number;
    }

    /// <summary>The type of the value; <see cref="PolicyValueKind.None"/> for <c>default(PolicyValue)</c>.</summary>
    public PolicyValueKind Kind { get; }

    // Unchecked views for the evaluator, which has already switched on Kind.
    internal string StringUnchecked => (string)_reference!;

    internal string[] SetUnchecked => (string[])_reference!;

    internal long NumberUnchecked => _number;

    /// <summary>Equality of kind and content: the same kind and, for sets, the same elements.</summary>
    /// <remarks>This is structural equality, not the policy's <c>==</c>, under which <c>"a"</c> also equals the set <c>{"a"}</c>.</remarks>
    public static bool operator ==(PolicyValue left, PolicyValue right) => left.Equals(right);

    /// <summary>The negation of <see cref="op_Equality"/>.</summary>
    public static bool operator !=(PolicyValue left, PolicyValue right) => !left.Equals(right);

    /// <summary>A string value.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    public static PolicyValue FromString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new PolicyValue(PolicyValueKind.String, value, 0);
    }

    /// <summary>An integer value.</summary>
    public static PolicyValue FromInteger(long value) => new(PolicyValueKind.Integer, null, value);

    /// <summary>A boolean value.</summary>
    public static PolicyValue FromBoolean(bool value) => new(PolicyValueKind.Boolean, null, value ? 1 : 0);

    /// <summary>A set of strings, copied. Elements are distinct by ordinal comparison, whatever comparer the set uses.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    /// <exception cref="ArgumentException">An element is null.</exception>
    public static PolicyValue FromSet(IReadOnlySet<string> values) => FromSet((IEnumerable<string>)values);

    /// <summary>A set of the given strings, copied; duplicates collapse.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="values"/> is null.</exception>
    /// <exception cref="ArgumentException">An element is null.</exception>
    public static PolicyValue FromSet(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);

        // ToArray copies even when given an array, so later changes by the caller cannot reach the value.
        var elements = values.ToArray();
        foreach (var element in elements)
        {
            if (element is null)
            {
                throw new ArgumentException("A policy set cannot contain null.", nameof(values));
            }
        }

        Array.Sort(elements, StringComparer.Ordinal);
        var distinct = 0;
        for (var i = 0; i < elements.Length; i++)
        {
            if (distinct == 0 || !string.Equals(elements[distinct - 1], elements[i], StringComparison.Ordinal))
            {
                elements[distinct++] = elements[i];
            }
        }

        Array.Resize(ref elements, distinct);
        return new PolicyValue(PolicyValueKind.StringSet, elements, 0);
    }

    /// <summary>The string, when <see cref="Kind"/> is <see cref="PolicyValueKind.String"/>.</summary>
    public bool TryGetString([NotNullWhen(true)] out string? value)
    {
        value = Kind == PolicyValueKind.String ? StringUnchecked : null;
        return value is not null;
    }

    /// <summary>The integer, when <see cref="Kind"/> is <see cref="PolicyValueKind.Integer"/>.</summary>
    public bool TryGetInteger(out long value)
    {
        value = Kind == PolicyValueKind.Integer ? _number : 0;
        return Kind == PolicyValueKind.Integer;
    }

    /// <summary>The boolean, when <see cref="Kind"/> is <see cref="PolicyValueKind.Boolean"/>.</summary>
    public bool TryGetBoolean(out bool value)
    {
        value = Kind == PolicyValueKind.Boolean && _number != 0;
        return Kind == PolicyValueKind.Boolean;
    }

    /// <summary>The elements in ordinal order without duplicates, when <see cref="Kind"/> is <see cref="PolicyValueKind.StringSet"/>.</summary>
    public bool TryGetSet(out ReadOnlySpan<string> elements)
    {
        elements = Kind == PolicyValueKind.StringSet ? SetUnchecked : default;
        return Kind == PolicyValueKind.StringSet;
    }

    /// <summary>
    /// True when this is a set containing <paramref name="element"/> or a string equal to it: the meaning of
    /// <c>"element" in name</c>. False for every other kind.
    /// </summary>
    public bool Contains(string element)
    {
        ArgumentNullException.ThrowIfNull(element);
        return Kind switch
        {
            PolicyValueKind.String => string.Equals(StringUnchecked, element, StringComparison.Ordinal),
            PolicyValueKind.StringSet => PolicySemantics.SortedContains(SetUnchecked, element),
            _ => false,
        };
    }

    /// <inheritdoc cref="op_Equality"/>
    public bool Equals(PolicyValue other)
    {
        if (Kind != other.Kind)
        {
            return false;
        }

        return Kind switch
        {
            PolicyValueKind.String => string.Equals(StringUnchecked, other.StringUnchecked, StringComparison.Ordinal),
            PolicyValueKind.StringSet => SetUnchecked.AsSpan().SequenceEqual(other.SetUnchecked),
            _ => _number == other._number,
        };
    }

    /// <inheritdoc cref="op_Equality"/>
    public override bool Equals(object? obj) => obj is PolicyValue other && Equals(other);

    /// <summary>A hash consistent with <see cref="Equals(PolicyValue)"/>.</summary>
    public override int GetHashCode()
    {
        switch (Kind)
        {
            case PolicyValueKind.String:
                return HashCode.Combine(Kind, StringComparer.Ordinal.GetHashCode(StringUnchecked));
            case PolicyValueKind.StringSet:
                var hash = new HashCode();
                hash.Add(Kind);
                foreach (var element in SetUnchecked)
                {
                    hash.Add(element, StringComparer.Ordinal);
                }

                return hash.ToHashCode();
            default:
                return HashCode.Combine(Kind, _number);
        }
    }

    /// <summary>The value in policy syntax where it has one (<c>"a\"b"</c>, <c>42</c>, <c>true</c>), sets as <c>{"a", "b"}</c>.</summary>
    public override string ToString()
    {
        switch (Kind)
        {
            case PolicyValueKind.String:
                return Quote(StringUnchecked);
            case PolicyValueKind.Integer:
                return _number.ToString(CultureInfo.InvariantCulture);
            case PolicyValueKind.Boolean:
                return _number != 0 ? "true" : "false";
            case PolicyValueKind.StringSet:
                return "{" + string.Join(", ", SetUnchecked.Select(Quote)) + "}";
            default:
                return "(none)";
        }
    }

    private static string Quote(string value)
    {
        var builder = new StringBuilder(value.Length + 2);
        builder.Append('"');
        foreach (var c in value)
        {
            if (c is '"' or '\\')
            {
                builder.Append('\\');
            }

            builder.Append(c);
        }

        return builder.Append('"').ToString();
    }
}
