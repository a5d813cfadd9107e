using SecureChannels.Protocol.Policy;

namespace SecureChannels.Protocol.Tests.Policy;

/// <summary>Every error code, with the position, line and column it is reported at.</summary>
public sealed class PolicySyntaxErrorTests
{
    [Theory]
    [InlineData("a == 1 & b", PolicyErrorCode.UnexpectedCharacter, 7, 1, 8)]
    [InlineData("a == 1 | b", PolicyErrorCode.UnexpectedCharacter, 7, 1, 8)]
    [InlineData("a = 1", PolicyErrorCode.UnexpectedCharacter, 2, 1, 3)]
    [InlineData("a == -1", PolicyErrorCode.UnexpectedCharacter, 5, 1, 6)]
    [InlineData("a == 1\n&& b == #", PolicyErrorCode.UnexpectedCharacter, 15, 2, 9)]
    [InlineData("a == 1\r\n&& #", PolicyErrorCode.UnexpectedCharacter, 11, 2, 4)]
    [InlineData("a == 1\r&& #", PolicyErrorCode.UnexpectedCharacter, 10, 2, 4)]
    [InlineData("a == \"x\\n\"", PolicyErrorCode.UnexpectedCharacter, 7, 1, 8)]
    [InlineData("a == \"x\u0001\"", PolicyErrorCode.UnexpectedCharacter, 7, 1, 8)]
    [InlineData("\uFEFFa == 1", PolicyErrorCode.UnexpectedCharacter, 0, 1, 1)]
    [InlineData("a == 1\u00a0", PolicyErrorCode.UnexpectedCharacter, 6, 1, 7)]
    [InlineData("a == \"abc", PolicyErrorCode.UnterminatedString, 5, 1, 6)]
    [InlineData("a == \"ab\ncd\"", PolicyErrorCode.UnterminatedString, 5, 1, 6)]
    [InlineData("a == \"ab\\", PolicyErrorCode.UnterminatedString, 5, 1, 6)]
    [InlineData("x &&\n  a == \"ab\\\"", PolicyErrorCode.UnterminatedString, 12, 2, 8)]
    [InlineData("a == 1 b", PolicyErrorCode.UnexpectedToken, 7, 1, 8)]
    [InlineData("(a == 1))", PolicyErrorCode.UnexpectedToken, 8, 1, 9)]
    [InlineData("a == == 1", PolicyErrorCode.UnexpectedToken, 5, 1, 6)]
    [InlineData("a == 1 == 2", PolicyErrorCode.UnexpectedToken, 7, 1, 8)]
    [InlineData("has a", PolicyErrorCode.UnexpectedToken, 4, 1, 5)]
    [InlineData("has(\"a\")", PolicyErrorCode.UnexpectedToken, 4, 1, 5)]
    [InlineData("&& a", PolicyErrorCode.UnexpectedToken, 0, 1, 1)]
    [InlineData("a in [b]", PolicyErrorCode.UnexpectedToken, 6, 1, 7)]
    [InlineData("a in [\"x\" \"y\"]", PolicyErrorCode.UnexpectedToken, 10, 1, 11)]
    [InlineData("a in [\"x\",]", PolicyErrorCode.UnexpectedToken, 10, 1, 11)]
    [InlineData("a == [1]", PolicyErrorCode.UnexpectedToken, 5, 1, 6)]
    [InlineData("a in (b)", PolicyErrorCode.UnexpectedToken, 5, 1, 6)]
    [InlineData("in == 1", PolicyErrorCode.UnexpectedToken, 0, 1, 1)]
    [InlineData("\n\n  )", PolicyErrorCode.UnexpectedToken, 4, 3, 3)]
    [InlineData("", PolicyErrorCode.UnexpectedEnd, 0, 1, 1)]
    [InlineData(" \t ", PolicyErrorCode.UnexpectedEnd, 3, 1, 4)]
    [InlineData("a == ", PolicyErrorCode.UnexpectedEnd, 5, 1, 6)]
    [InlineData("(a == 1", PolicyErrorCode.UnexpectedEnd, 7, 1, 8)]
    [InlineData("a ==\n", PolicyErrorCode.UnexpectedEnd, 5, 2, 1)]
    [InlineData("a in [\"x\",", PolicyErrorCode.UnexpectedEnd, 10, 1, 11)]
    [InlineData("has(", PolicyErrorCode.UnexpectedEnd, 4, 1, 5)]
    [InlineData("a &&", PolicyErrorCode.UnexpectedEnd, 4, 1, 5)]
    [InlineData("!", PolicyErrorCode.UnexpectedEnd, 1, 1, 2)]
    [InlineData("a in", PolicyErrorCode.UnexpectedEnd, 4, 1, 5)]
    [InlineData("\"a\" == 1", PolicyErrorCode.TypeMismatch, 7, 1, 8)]
    [InlineData("true == \"true\"", PolicyErrorCode.TypeMismatch, 8, 1, 9)]
    [InlineData("a < \"5\"", PolicyErrorCode.TypeMismatch, 4, 1, 5)]
    [InlineData("true < 1", PolicyErrorCode.TypeMismatch, 0, 1, 1)]
    [InlineData("a >= false", PolicyErrorCode.TypeMismatch, 5, 1, 6)]
    [InlineData("\"x\"", PolicyErrorCode.TypeMismatch, 0, 1, 1)]
    [InlineData("a == 1 && 5", PolicyErrorCode.TypeMismatch, 10, 1, 11)]
    [InlineData("a in [1, \"b\"]", PolicyErrorCode.TypeMismatch, 9, 1, 10)]
    [InlineData("a in [\"b\", 1]", PolicyErrorCode.TypeMismatch, 11, 1, 12)]
    [InlineData("a in [true]", PolicyErrorCode.TypeMismatch, 6, 1, 7)]
    [InlineData("\"a\" in [1]", PolicyErrorCode.TypeMismatch, 0, 1, 1)]
    [InlineData("true in [\"a\"]", PolicyErrorCode.TypeMismatch, 0, 1, 1)]
    [InlineData("1 in a", PolicyErrorCode.TypeMismatch, 0, 1, 1)]
    [InlineData("a in \"x\"", PolicyErrorCode.TypeMismatch, 5, 1, 6)]
    [InlineData("Subject.role == \"x\"", PolicyErrorCode.InvalidName, 0, 1, 1)]
    [InlineData("subject.Role == \"x\"", PolicyErrorCode.InvalidName, 0, 1, 1)]
    [InlineData("a == b.", PolicyErrorCode.InvalidName, 5, 1, 6)]
    [InlineData("x &&\n subject..role", PolicyErrorCode.InvalidName, 6, 2, 2)]
    [InlineData("_a-b == 1", PolicyErrorCode.InvalidName, 0, 1, 1)]
    [InlineData("a.1b == 1", PolicyErrorCode.InvalidName, 0, 1, 1)]
    [InlineData("a.-b == 1", PolicyErrorCode.InvalidName, 0, 1, 1)]
    [InlineData("r\u00f4le == 1", PolicyErrorCode.InvalidName, 0, 1, 1)]
    [InlineData("has(True)", PolicyErrorCode.InvalidName, 4, 1, 5)]
    [InlineData("a == 9223372036854775808", PolicyErrorCode.IntegerOverflow, 5, 1, 6)]
    [InlineData("a in [1,\n 99999999999999999999]", PolicyErrorCode.IntegerOverflow, 10, 2, 2)]
    public void ErrorIsReportedWithCodeAndPosition(string text, PolicyErrorCode code, int position, int line, int column)
    {
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(text));
        Assert.Equal((code, position, line, column), (error.Code, error.Position, error.Line, error.Column));
        Assert.Contains($"(line {line}, column {column})", error.Message, StringComparison.Ordinal);

        Assert.False(AccessPolicy.TryParse(text, out var policy, out var tryError));
        Assert.Null(policy);
        Assert.Equal((code, position, line, column), (tryError.Code, tryError.Position, tryError.Line, tryError.Column));
    }

    [Fact]
    public void NestingBeyondTheLimitIsTooDeepAtTheExtraParenthesis()
    {
        var depth = AccessPolicy.MaxNestingDepth;
        var atLimit = new string('(', depth) + "true" + new string(')', depth);
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.Parse(atLimit).Evaluate(new PolicyInput()));

        var overLimit = new string('(', depth + 1) + "true" + new string(')', depth + 1);
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(overLimit));
        Assert.Equal((PolicyErrorCode.TooDeep, depth, 1, depth + 1), (error.Code, error.Position, error.Line, error.Column));
    }

    [Fact]
    public void NegationsCountTowardsNestingDepth()
    {
        var depth = AccessPolicy.MaxNestingDepth;
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.Parse(new string('!', depth) + "true").Evaluate(new PolicyInput()));

        var mixed = string.Concat(Enumerable.Repeat("!(", depth / 2)) + "!true" + new string(')', depth / 2);
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(mixed));
        Assert.Equal((PolicyErrorCode.TooDeep, depth), (error.Code, error.Position));
    }

    [Fact]
    public void ListBeyondTheLimitIsTooLongAtTheExtraItem()
    {
        var items = Enumerable.Range(0, AccessPolicy.MaxListLength).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var atLimit = "n in [" + string.Join(",", items) + "]";
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.Parse(atLimit).Evaluate(new PolicyInput().Set("n", AccessPolicy.MaxListLength - 1)));

        var overLimit = "n in [" + string.Join(",", items) + ",7]";
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(overLimit));
        Assert.Equal((PolicyErrorCode.TooLong, overLimit.Length - 2), (error.Code, error.Position));
    }

    [Fact]
    public void TextBeyondTheLimitIsTooLongAtTheLimit()
    {
        var atLimit = "true" + new string(' ', AccessPolicy.MaxTextLength - 4);
        Assert.Equal(AccessPolicy.MaxTextLength, atLimit.Length);
        Assert.Equal(PolicyDecision.Allow, AccessPolicy.Parse(atLimit).Evaluate(new PolicyInput()));

        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(atLimit + " "));
        Assert.Equal(
            (PolicyErrorCode.TooLong, AccessPolicy.MaxTextLength, 1, AccessPolicy.MaxTextLength + 1),
            (error.Code, error.Position, error.Line, error.Column));
    }

    [Theory]
    [InlineData(" ")]
    [InlineData("=")]
    [InlineData("&")]
    [InlineData("\"")]
    [InlineData("9")]
    [InlineData("x")]
    public void TokenCutByTheLengthLimitIsTooLong(string continuation)
    {
        // The text up to the limit ends in the first half of a token the next character would complete or extend.
        var prefix = continuation switch
        {
            "=" => "a =",
            "&" => "a &",
            "\"" => "a == \"",
            "9" => "a == 9",
            "x" => "a == x",
            _ => "true ",
        };
        var text = new string(' ', AccessPolicy.MaxTextLength - prefix.Length) + prefix + continuation;
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse(text));
        Assert.Equal((PolicyErrorCode.TooLong, AccessPolicy.MaxTextLength), (error.Code, error.Position));
    }

    [Theory]
    [InlineData("a == 9223372036854775807")]
    [InlineData("a.b_c.d-e == 0")]
    [InlineData("_ == 0")]
    [InlineData("has(x.true)")]
    [InlineData("a in []")]
    [InlineData("a\t==\r\n1")]
    public void EdgeOfTheGrammarParses(string text)
    {
        Assert.True(AccessPolicy.TryParse(text, out var policy, out var error), error?.Message);
        Assert.Equal(text, policy.Text);
    }

    [Fact]
    public void NullTextIsAnArgumentError()
    {
        Assert.Throws<ArgumentNullException>(() => AccessPolicy.Parse(null!));
        Assert.Throws<ArgumentNullException>(() => AccessPolicy.TryParse(null!, out _, out _));
    }

    [Fact]
    public void LongTokensAreAbbreviatedInMessages()
    {
        var name = "a" + new string('b', 500);
        var error = Assert.Throws<PolicySyntaxException>(() => AccessPolicy.Parse($"x == 1 {name}"));
        Assert.Equal(PolicyErrorCode.UnexpectedToken, error.Code);
        Assert.True(error.Message.Length < 200, error.Message);
    }
}
