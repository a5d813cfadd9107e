using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Protocol.Tests.Credentials;

/// <summary>Principal text forms, attribute names and values, and the subset rule delegation relies on.</summary>
public sealed class PrincipalAndAttributeTests
{
    [Theory]
    [InlineData("self", PrincipalKind.Self, "")]
    [InlineData("user:alice@example.com", PrincipalKind.User, "alice@example.com")]
    [InlineData("team:payments", PrincipalKind.Team, "payments")]
    [InlineData("system:ci:nightly", PrincipalKind.System, "ci:nightly")]
    public void PrincipalTextRoundTrips(string text, PrincipalKind kind, string id)
    {
        var principal = Principal.Parse(text);

        Assert.Equal(kind, principal.Kind);
        Assert.Equal(id, principal.Id);
        Assert.Equal(text, principal.ToString());
        Assert.Equal(principal, Principal.Parse(principal.ToString()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Self")]
    [InlineData("self:x")]
    [InlineData("user")]
    [InlineData("user:")]
    [InlineData(":alice")]
    [InlineData("robot:r2")]
    [InlineData("USER:alice")]
    public void MalformedPrincipalTextIsRefused(string text)
    {
        Assert.Throws<FormatException>(() => Principal.Parse(text));
    }

    [Fact]
    public void PrincipalRefusesAnIdThatDoesNotFitItsKind()
    {
        Assert.Throws<ArgumentException>(() => new Principal(PrincipalKind.Self, "x"));
        Assert.Throws<ArgumentException>(() => new Principal(PrincipalKind.User, string.Empty));
        Assert.Throws<ArgumentException>(() => new Principal(PrincipalKind.User, new string('a', CredentialLimits.MaxValueLength + 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Principal((PrincipalKind)7, "x"));
        Assert.Equal(CredentialLimits.MaxValueLength, new Principal(PrincipalKind.User, new string('a', CredentialLimits.MaxValueLength)).Id.Length);
    }

    [Fact]
    public void DefaultPrincipalIsSelfInTextEncodingAndEquality()
    {
        // default(Principal) is reachable through the public struct; it must not be a second, unequal "self".
        var unset = default(Principal);

        Assert.Equal(PrincipalKind.Self, unset.Kind);
        Assert.Equal(string.Empty, unset.Id);
        Assert.Equal("self", unset.ToString());
        Assert.Equal(Principal.Self, unset);
        Assert.True(Principal.Self == unset);
        Assert.Equal(Principal.Self.GetHashCode(), unset.GetHashCode());
    }

    [Fact]
    public void AttributeParseGroupsRepeatedNamesIntoOneSortedSet()
    {
        var set = AttributeSet.Parse(["role=b", "env=prod", "role=a", "role=b"]);

        Assert.Equal(2, set.Count);
        Assert.Equal(["env", "role"], set.Entries.Keys);
        Assert.Equal(["a", "b"], set.Entries["role"]);
        Assert.Equal("env=prod, role=a|b", set.ToString());
        Assert.Equal(AttributeSet.Parse(["role=a", "role=b", "env=prod"]), set);
    }

    [Theory]
    [InlineData("Role")]
    [InlineData("1role")]
    [InlineData("_role")]
    [InlineData("ro le")]
    [InlineData("rôle")]
    [InlineData("")]
    public void InvalidAttributeNamesAreRefused(string name)
    {
        Assert.False(AttributeSet.IsValidName(name));
        Assert.ThrowsAny<Exception>(() => AttributeSet.Parse([name + "=x"]));
    }

    [Fact]
    public void AttributeNameLengthIsLimited()
    {
        Assert.True(AttributeSet.IsValidName("a" + new string('b', CredentialLimits.MaxAttributeNameLength - 1)));
        Assert.False(AttributeSet.IsValidName("a" + new string('b', CredentialLimits.MaxAttributeNameLength)));
        Assert.True(AttributeSet.IsValidName("a-b_c9"));
    }

    [Fact]
    public void AttributeValuesMustBeOneToTheLimitOfBytes()
    {
        Assert.Throws<ArgumentException>(() => AttributeSet.Parse(["role="]));
        Assert.Throws<ArgumentException>(() => AttributeSet.Parse(["role=" + new string('x', CredentialLimits.MaxValueLength + 1)]));
        Assert.Throws<ArgumentException>(() => AttributeSet.Parse(["role=" + new string('é', (CredentialLimits.MaxValueLength / 2) + 1)]));
        Assert.Single(AttributeSet.Parse(["role=" + new string('x', CredentialLimits.MaxValueLength)]).Entries);
        Assert.Throws<FormatException>(() => AttributeSet.Parse(["role"]));
        Assert.Throws<FormatException>(() => AttributeSet.Parse(["=x"]));
    }

    [Fact]
    public void AttributeCountsAreLimited()
    {
        var names = Enumerable.Range(0, CredentialLimits.MaxAttributes + 1).Select(i => $"a{i}=x").ToArray();
        var values = Enumerable.Range(0, CredentialLimits.MaxValuesPerAttribute + 1).Select(i => $"role={i}").ToArray();

        Assert.Throws<ArgumentException>(() => AttributeSet.Parse(names));
        Assert.Throws<ArgumentException>(() => AttributeSet.Parse(values));
        Assert.Equal(CredentialLimits.MaxAttributes, AttributeSet.Parse(names[..^1]).Count);
        Assert.Equal(CredentialLimits.MaxValuesPerAttribute, AttributeSet.Parse(values[..^1]).Entries["role"].Count);
    }

    [Fact]
    public void AttributeNameGivenTwiceToCreateIsRefused()
    {
        Assert.Throws<ArgumentException>(() => AttributeSet.Create(
            [KeyValuePair.Create("role", (IEnumerable<string>)["a"]), KeyValuePair.Create("role", (IEnumerable<string>)["b"])]));
    }

    [Fact]
    public void SubsetReportsTheFirstExcessNameOrValue()
    {
        var parent = AttributeSet.Parse(["env=prod", "env=staging", "role=billing"]);

        Assert.True(AttributeSet.Parse(["env=prod"]).IsSubsetOf(parent, out var none, out _));
        Assert.Null(none);
        Assert.True(AttributeSet.Empty.IsSubsetOf(parent, out _, out _));
        Assert.True(parent.IsSubsetOf(parent, out _, out _));

        Assert.False(AttributeSet.Parse(["admin=yes", "env=prod"]).IsSubsetOf(parent, out var name, out var isName));
        Assert.Equal("admin", name);
        Assert.True(isName);

        Assert.False(AttributeSet.Parse(["env=dev", "env=prod"]).IsSubsetOf(parent, out var value, out var valueIsName));
        Assert.Equal("env=dev", value);
        Assert.False(valueIsName);
    }

    [Fact]
    public void WhereKeepsOnlyTheAcceptedNames()
    {
        var set = AttributeSet.Parse(["env=prod", "role=billing", "region=eu"]);

        Assert.Equal(AttributeSet.Parse(["role=billing"]), set.Where(n => n == "role"));
        Assert.Same(set, set.Where(_ => true));
        Assert.Equal(0, set.Where(_ => false).Count);
    }
}
