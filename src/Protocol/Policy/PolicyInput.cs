namespace SecureChannels.Protocol.Policy;

/// <summary>
/// A dictionary-backed <see cref="IPolicyInput"/> with ordinal names. Lookups allocate nothing, so a
/// <see cref="PolicyInput"/> built once can back any number of evaluations.
/// </summary>
/// <remarks>
/// Not safe for concurrent writers; concurrent readers (evaluations) are fine while nobody writes. Names are
/// checked against the policy name grammar when set, so a misspelt name fails here rather than silently
/// denying every time.
/// </remarks>
public sealed class PolicyInput : IPolicyInput
{
    private readonly Dictionary<string, PolicyValue> _values = new(StringComparer.Ordinal);

    /// <summary>How many names have values.</summary>
    public int Count => _values.Count;

    /// <summary>Sets (or replaces) the value of <paramref name="name"/>. Returns this input, for chaining.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid policy name, or <paramref name="value"/> is <c>default</c>.</exception>
    public PolicyInput Set(string name, PolicyValue value)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!PolicyName.IsValid(name))
        {
            throw new ArgumentException($"'{name}' is not a valid policy name (lower-case dotted identifiers, for example subject.role).", nameof(name));
        }

        if (value.Kind == PolicyValueKind.None)
        {
            throw new ArgumentException("default(PolicyValue) is not a value; remove the name instead.", nameof(value));
        }

        _values[name] = value;
        return this;
    }

    /// <summary>Sets <paramref name="name"/> to a string.</summary>
    /// <inheritdoc cref="Set(string, PolicyValue)" path="/exception"/>
    public PolicyInput Set(string name, string value) => Set(name, PolicyValue.FromString(value));

    /// <summary>Sets <paramref name="name"/> to an integer.</summary>
    /// <inheritdoc cref="Set(string, PolicyValue)" path="/exception"/>
    public PolicyInput Set(string name, long value) => Set(name, PolicyValue.FromInteger(value));

    /// <summary>Sets <paramref name="name"/> to a boolean.</summary>
    /// <inheritdoc cref="Set(string, PolicyValue)" path="/exception"/>
    public PolicyInput Set(string name, bool value) => Set(name, PolicyValue.FromBoolean(value));

    /// <summary>Sets <paramref name="name"/> to a set of strings (copied).</summary>
    /// <inheritdoc cref="Set(string, PolicyValue)" path="/exception"/>
    public PolicyInput Set(string name, IEnumerable<string> values) => Set(name, PolicyValue.FromSet(values));

    /// <summary>Removes <paramref name="name"/>; true when it had a value.</summary>
    public bool Remove(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _values.Remove(name);
    }

    /// <summary>Removes every name.</summary>
    public void Clear() => _values.Clear();

    /// <inheritdoc/>
    public bool TryGetValue(string name, out PolicyValue value)
    {
        if (name is null)
        {
            value = default;
            return false;
        }

        return _values.TryGetValue(name, out value);
    }
}
