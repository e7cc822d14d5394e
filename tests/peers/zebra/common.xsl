<?xml version="1.0" encoding="UTF-8"?>
<!-- Helpers shared by marc21-index.xsl and unimarc-index.xsl (balis test peer).
     Index names are the Bib-1 names of Zebra's bib1.att, so the numeric use attributes
     reach them: Title = 1=4, Author = 1=1003, ISBN = 1=7, ... -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:m="http://www.loc.gov/MARC21/slim"
                xmlns:z="http://indexdata.com/zebra-2.0">

  <!-- The text of the subfields of the context field whose codes are listed in $codes
       (case-sensitive: UNIMARC pinyin $A is not $a), separated by spaces. -->
  <xsl:template name="text">
    <xsl:param name="codes"/>
    <xsl:for-each select="m:subfield[@code != '' and contains($codes, @code)]">
      <xsl:if test="position() &gt; 1"><xsl:text> </xsl:text></xsl:if>
      <xsl:value-of select="."/>
    </xsl:for-each>
  </xsl:template>

  <!-- One z:index element, unless the value is blank. -->
  <xsl:template name="emit">
    <xsl:param name="names"/>
    <xsl:param name="value"/>
    <xsl:if test="normalize-space($value) != ''">
      <z:index name="{$names}"><xsl:value-of select="normalize-space($value)"/></z:index>
    </xsl:if>
  </xsl:template>

  <!-- Subfields selected by $codes of the context field, into the indexes $names. -->
  <xsl:template name="subfields">
    <xsl:param name="names"/>
    <xsl:param name="codes"/>
    <xsl:call-template name="emit">
      <xsl:with-param name="names" select="$names"/>
      <xsl:with-param name="value">
        <xsl:call-template name="text">
          <xsl:with-param name="codes" select="$codes"/>
        </xsl:call-template>
      </xsl:with-param>
    </xsl:call-template>
  </xsl:template>

  <!-- Every subfield except the numeric (linking/control) ones, for 1=1016 "any". -->
  <xsl:template name="any">
    <xsl:for-each select="m:subfield[translate(@code, '0123456789', '') != '']">
      <xsl:call-template name="emit">
        <xsl:with-param name="names" select="'Any:w'"/>
        <xsl:with-param name="value" select="."/>
      </xsl:call-template>
    </xsl:for-each>
  </xsl:template>

  <!-- A publication year: 4 digits, indexed as word, number and year so that
       1=31 with relations 2=1..5 works with or without 4=109 (numeric) or 4=4 (year). -->
  <xsl:template name="year">
    <xsl:param name="value"/>
    <z:index name="Date-of-publication:w Date-of-publication:n Date-of-publication:y"><xsl:value-of select="$value"/></z:index>
  </xsl:template>

  <!-- The first four digits of a text such as "c1999." or "1993.3", or nothing. -->
  <xsl:template name="digits4">
    <xsl:param name="value"/>
    <xsl:variable name="digits" select="translate($value, translate($value, '0123456789', ''), '')"/>
    <xsl:if test="string-length($digits) &gt;= 4">
      <xsl:value-of select="substring($digits, 1, 4)"/>
    </xsl:if>
  </xsl:template>

  <xsl:template name="is-year">
    <xsl:param name="value"/>
    <xsl:if test="string-length($value) = 4 and translate($value, '0123456789', '') = ''">yes</xsl:if>
  </xsl:template>

  <!-- ISBN: the number as given (the word register drops hyphens) and its other form,
       ISBN-10 <-> ISBN-13 (978 prefix), so that either finds the record. -->
  <xsl:template name="isbn">
    <xsl:param name="value"/>
    <xsl:variable name="first" select="normalize-space(substring-before(concat(normalize-space($value), ' '), ' '))"/>
    <xsl:variable name="n" select="translate(translate($first, '-', ''), 'x', 'X')"/>
    <xsl:call-template name="emit">
      <xsl:with-param name="names" select="'ISBN:w Identifier-standard:w'"/>
      <xsl:with-param name="value" select="$n"/>
    </xsl:call-template>
    <xsl:variable name="d" select="translate($n, 'X', '')"/>
    <xsl:choose>
      <xsl:when test="string-length($n) = 10 and string-length($d) &gt;= 9 and translate(substring($n, 1, 9), '0123456789', '') = ''">
        <xsl:variable name="sum" select="38 + 3 * substring($n, 1, 1) + substring($n, 2, 1) + 3 * substring($n, 3, 1) + substring($n, 4, 1) + 3 * substring($n, 5, 1) + substring($n, 6, 1) + 3 * substring($n, 7, 1) + substring($n, 8, 1) + 3 * substring($n, 9, 1)"/>
        <z:index name="ISBN:w Identifier-standard:w"><xsl:value-of select="concat('978', substring($n, 1, 9), (10 - $sum mod 10) mod 10)"/></z:index>
      </xsl:when>
      <xsl:when test="string-length($n) = 13 and starts-with($n, '978') and translate($n, '0123456789', '') = ''">
        <xsl:variable name="sum" select="10 * substring($n, 4, 1) + 9 * substring($n, 5, 1) + 8 * substring($n, 6, 1) + 7 * substring($n, 7, 1) + 6 * substring($n, 8, 1) + 5 * substring($n, 9, 1) + 4 * substring($n, 10, 1) + 3 * substring($n, 11, 1) + 2 * substring($n, 12, 1)"/>
        <xsl:variable name="check" select="(11 - $sum mod 11) mod 11"/>
        <z:index name="ISBN:w Identifier-standard:w">
          <xsl:value-of select="substring($n, 4, 9)"/>
          <xsl:choose>
            <xsl:when test="$check = 10">X</xsl:when>
            <xsl:otherwise><xsl:value-of select="$check"/></xsl:otherwise>
          </xsl:choose>
        </z:index>
      </xsl:when>
    </xsl:choose>
  </xsl:template>

  <!-- The record's own id (001) as 1=12 local number. -->
  <xsl:template name="local-number">
    <xsl:call-template name="emit">
      <xsl:with-param name="names" select="'Local-number:w Local-number:0'"/>
      <xsl:with-param name="value" select="m:controlfield[@tag = '001']"/>
    </xsl:call-template>
  </xsl:template>
</xsl:stylesheet>
