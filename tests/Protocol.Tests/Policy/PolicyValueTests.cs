using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Policy;

/// <summary>The value type and the dictionary-backed input.</summary>
public sealed class PolicyValueTests
{
    [Fact]
    public void SetsAreCopiedSortedOrdinallyAndDistinct()
    {
        var source = new List<string> { "b", "a", "B", "b" };
        var value = PolicyValue.FromSet(source);
        source.Add("c");

        Assert.Equal(PolicyValueKind.StringSet, value.Kind);
        Assert.True(value.TryGetSet(out var elements));
        Assert.Equal(["B", "a", "b"], elements.ToArray());
    }

    [Fact]
    public void SetFromCaseInsensitiveHashSetKeepsOrdinalElements()
    {
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Admin" };
        var value = PolicyValue.FromSet(set);
        Assert.True(value.Contains("Admin"));
        Assert.False(value.Contains("admin"));
    }

    [Fact]
    public void SetWithNullElementIsRejected()
    {
        Assert.Throws<ArgumentException>(() => PolicyValue.FromSet(["a", null!]));
        Assert.Throws<ArgumentNullException>(() => PolicyValue.FromSet((IEnumerable<string>)null!));
        Assert.Throws<ArgumentNullException>(() => PolicyValue.FromString(null!));
    }

    [Fact]
    public void AccessorsAnswerOnlyForTheirKind()
    {
        var text = PolicyValue.FromString("x");
        var number = PolicyValue.FromInteger(-3);
        var flag = PolicyValue.FromBoolean(true);

        Assert.True(text.TryGetString(out var s) && s == "x");
        Assert.False(text.TryGetInteger(out _));
        Assert.True(number.TryGetInteger(out var n) && n == -3);
        Assert.False(number.TryGetBoolean(out _));
        Assert.True(flag.TryGetBoolean(out var b) && b);
        Assert.False(flag.TryGetSet(out _));
        Assert.False(default(PolicyValue).TryGetString(out _));
        Assert.Equal(PolicyValueKind.None, default(PolicyValue).Kind);
    }

    [Fact]
    public void NegativeIntegersFromTheInputCompare()
    {
        var policy = AccessPolicy.Parse("n < 0");
        Assert.Equal(PolicyDecision.Allow, policy.Evaluate(new PolicyInput().Set("n", long.MinValue)));
    }

    [Fact]
    public void EqualityIsStructural()
    {
        Assert.Equal(PolicyValue.FromSet(["b", "a"]), PolicyValue.FromSet(["a", "b", "a"]));
        Assert.Equal(PolicyValue.FromSet(["b", "a"]).GetHashCode(), PolicyValue.FromSet(["a", "b"]).GetHashCode());
        Assert.NotEqual(PolicyValue.FromString("a"), PolicyValue.FromSet(["a"]));
        Assert.NotEqual(PolicyValue.FromInteger(1), PolicyValue.FromBoolean(true));
        Assert.True(PolicyValue.FromString("a") == PolicyValue.FromString("a"));
        Assert.True(PolicyValue.FromInteger(1) != PolicyValue.FromInteger(2));
    }

    [Fact]
    public void ToStringUsesPolicySyntax()
    {
        Assert.Equal("\"a\\\"b\\\\\"", PolicyValue.FromString("a\"b\\").ToString());
        Assert.Equal("42", PolicyValue.FromInteger(42).ToString());
        Assert.Equal("false", PolicyValue.FromBoolean(false).ToString());
        Assert.Equal("{\"a\", \"b\"}", PolicyValue.FromSet(["b", "a"]).ToString());
        Assert.Equal("(none)", default(PolicyValue).ToString());
    }

    [Theory]
    [InlineData("Subject.role")]
    [InlineData("subject.")]
    [InlineData("")]
    [InlineData("a-b")]
    [InlineData("subject role")]
    public void InputRejectsNamesAPolicyCouldNeverReference(string name)
    {
        Assert.Throws<ArgumentException>(() => new PolicyInput().Set(name, "x"));
    }

    [Fact]
    public void InputRejectsDefaultValue()
    {
        Assert.Throws<ArgumentException>(() => new PolicyInput().Set("a", default(PolicyValue)));
    }

    [Fact]
    public void InputSetReplacesAndRemoveForgets()
    {
        var input = new PolicyInput().Set("a", 1).Set("a", "two").Set("b", false);
        Assert.Equal(2, input.Count);
        Assert.True(input.TryGetValue("a", out var a) && a == PolicyValue.FromString("two"));
        Assert.True(input.Remove("a"));
        Assert.False(input.TryGetValue("a", out _));
        input.Clear();
        Assert.Equal(0, input.Count);
        Assert.False(input.TryGetValue(null!, out _));
    }
}
