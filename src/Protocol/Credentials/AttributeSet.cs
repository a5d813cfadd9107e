using System.Collections.Immutable;
using System.Text;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Credentials;

/// <summary>
/// What a credential grants: attribute names, each with a set of string values (a single value is a set of
/// one). Immutable, with one canonical order, so two equal sets always encode to the same bytes.
/// </summary>
/// <remarks>
/// Names are <c>[a-z][a-z0-9_-]{0,63}</c>; values are 1 to 256 bytes of UTF-8. Encoding: a map from name
/// (str) to an array of values (str), names and values in ascending ordinal order, no duplicates.
/// </remarks>
public sealed class AttributeSet : IEquatable<AttributeSet>
{
    private readonly ImmutableSortedDictionary<string, ImmutableSortedSet<string>> _attributes;

    private AttributeSet(ImmutableSortedDictionary<string, ImmutableSortedSet<string>> attributes) => _attributes = attributes;

    /// <summary>No attributes.</summary>
    public static AttributeSet Empty { get; } = new(ImmutableSortedDictionary.Create<string, ImmutableSortedSet<string>>(StringComparer.Ordinal));

    /// <summary>How many attributes.</summary>
    public int Count => _attributes.Count;

    /// <summary>The attributes, by name, in ascending ordinal order.</summary>
    public IReadOnlyDictionary<string, ImmutableSortedSet<string>> Entries => _attributes;

    /// <summary>Builds a set from names and values, validating both.</summary>
    /// <exception cref="ArgumentException">A name or value is invalid, a name has no value, or a limit is exceeded.</exception>
    public static AttributeSet Create(IEnumerable<KeyValuePair<string, IEnumerable<string>>> attributes)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        var builder = ImmutableSortedDictionary.CreateBuilder<string, ImmutableSortedSet<string>>(StringComparer.Ordinal);
        foreach (var (name, values) in attributes)
        {
            if (!IsValidName(name))
            {
                throw new ArgumentException($"'{name}' is not an attribute name ([a-z][a-z0-9_-]{{0,{CredentialLimits.MaxAttributeNameLength - 1}}}).", nameof(attributes));
            }

            var set = values.ToImmutableSortedSet(StringComparer.Ordinal);
            if (set.IsEmpty || set.Count > CredentialLimits.MaxValuesPerAttribute || set.Any(v => v.Length == 0 || Encoding.UTF8.GetByteCount(v) > CredentialLimits.MaxValueLength))
            {
                throw new ArgumentException($"Attribute '{name}' needs 1 to {CredentialLimits.MaxValuesPerAttribute} values of 1 to {CredentialLimits.MaxValueLength} bytes.", nameof(attributes));
            }

            if (!builder.TryAdd(name, set))
            {
                throw new ArgumentException($"Attribute '{name}' is given twice.", nameof(attributes));
            }
        }

        if (builder.Count > CredentialLimits.MaxAttributes)
        {
            throw new ArgumentException($"At most {CredentialLimits.MaxAttributes} attributes.", nameof(attributes));
        }

        return new AttributeSet(builder.ToImmutable());
    }

    /// <summary>Builds a set from <c>name=value</c> pairs; a repeated name adds values to its set.</summary>
    public static AttributeSet Parse(IEnumerable<string> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var grouped = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"'{pair}' is not name=value.");
            }

            var name = pair[..equals];
            if (!grouped.TryGetValue(name, out var values))
            {
                grouped[name] = values = [];
            }

            values.Add(pair[(equals + 1)..]);
        }

        return Create(grouped.Select(g => KeyValuePair.Create(g.Key, (IEnumerable<string>)g.Value)));
    }

    /// <summary>True when every attribute of this set is in <paramref name="parent"/> with a superset of values there.</summary>
    public bool IsSubsetOf(AttributeSet parent, out string? firstExcess, out bool excessIsName)
    {
        ArgumentNullException.ThrowIfNull(parent);
        foreach (var (name, values) in _attributes)
        {
            if (!parent._attributes.TryGetValue(name, out var allowed))
            {
                (firstExcess, excessIsName) = (name, true);
                return false;
            }

            if (values.FirstOrDefault(v => !allowed.Contains(v)) is { } extra)
            {
                (firstExcess, excessIsName) = ($"{name}={extra}", false);
                return false;
            }
        }

        (firstExcess, excessIsName) = (null, false);
        return true;
    }

    /// <summary>The attributes whose names <paramref name="keep"/> accepts.</summary>
    public AttributeSet Where(Func<string, bool> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        var builder = _attributes.ToBuilder();
        foreach (var name in _attributes.Keys.Where(n => !keep(n)))
        {
            builder.Remove(name);
        }

        return builder.Count == _attributes.Count ? this : new AttributeSet(builder.ToImmutable());
    }

    /// <summary>True for a valid attribute name.</summary>
    public static bool IsValidName(string? name) =>
        name is { Length: > 0 and <= CredentialLimits.MaxAttributeNameLength }
        && char.IsAsciiLetterLower(name[0])
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-');

    /// <inheritdoc />
    public bool Equals(AttributeSet? other) =>
        other is not null && Count == other.Count && _attributes.All(a => other._attributes.TryGetValue(a.Key, out var v) && v.SetEquals(a.Value));

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as AttributeSet);

    /// <inheritdoc />
    public override int GetHashCode() => Count;

    /// <inheritdoc />
    public override string ToString() => string.Join(", ", _attributes.Select(a => $"{a.Key}={string.Join('|', a.Value)}"));

    /// <summary>The canonical encoding on its own (as stored by an authority's registry).</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        Write(ref writer);
        return writer.ToArray();
    }

    /// <summary>Decodes <see cref="Encode"/>'s output.</summary>
    /// <exception cref="WireFormatException">Not a canonical attribute set.</exception>
    public static AttributeSet Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "attributes", CredentialLimits.MaxCredentialLength, Read, static a => a.Encode());

    internal void Write(ref CanonicalWriter writer)
    {
        writer.WriteMap(_attributes.Count);
        foreach (var (name, values) in _attributes)
        {
            writer.WriteText(name);
            writer.WriteArray(values.Count);
            foreach (var value in values)
            {
                writer.WriteText(value);
            }
        }
    }

    internal static AttributeSet Read(ref CanonicalReader reader)
    {
        var count = reader.ReadMap("attributes", CredentialLimits.MaxAttributes);
        var attributes = new List<KeyValuePair<string, IEnumerable<string>>>(count);
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadText("attribute name", CredentialLimits.MaxAttributeNameLength);
            var valueCount = reader.ReadArray("attribute values", 1, CredentialLimits.MaxValuesPerAttribute);
            var values = new string[valueCount];
            for (var v = 0; v < valueCount; v++)
            {
                values[v] = reader.ReadText("attribute value", CredentialLimits.MaxValueLength);
            }

            attributes.Add(KeyValuePair.Create(name, (IEnumerable<string>)values));
        }

        // Order and duplicates are checked by re-encoding (CanonicalEncoding.Decode); validity here.
        try
        {
            return Create(attributes);
        }
        catch (ArgumentException e)
        {
            throw new WireFormatException(WireErrorKind.Malformed, $"attributes: {e.Message}", e);
        }
    }
}
