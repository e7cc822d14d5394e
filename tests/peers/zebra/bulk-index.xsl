<?xml version="1.0" encoding="UTF-8"?>
<!-- Light indexing for the synthetic "bulk" database (harvest benchmarks): only what a
     harvest needs, so that thousands of records index in seconds.
     1=12 Local-number (001), 1=4 Title (245 abnp), 1=1003 Author (100/700 a),
     1=31 Date-of-publication (008/07-10), 1=1016 Any (245 a, 100 a, 500 a: the
     "Synthetic bulk record n of N" note, so 1=1016 "synthetic" finds every record). -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:m="http://www.loc.gov/MARC21/slim"
                xmlns:z="http://indexdata.com/zebra-2.0"
                exclude-result-prefixes="m">
  <xsl:include href="common.xsl"/>
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>

  <xsl:template match="/">
    <xsl:for-each select="m:record | m:collection/m:record">
      <z:record type="update">
        <xsl:call-template name="local-number"/>
        <xsl:variable name="y008" select="substring(m:controlfield[@tag = '008'], 8, 4)"/>
        <xsl:if test="translate($y008, '0123456789', '') = '' and string-length($y008) = 4">
          <xsl:call-template name="year"><xsl:with-param name="value" select="$y008"/></xsl:call-template>
        </xsl:if>
        <xsl:for-each select="m:datafield[@tag = '245']">
          <xsl:call-template name="subfields">
            <xsl:with-param name="names" select="'Title:w'"/>
            <xsl:with-param name="codes" select="'abnp'"/>
          </xsl:call-template>
        </xsl:for-each>
        <xsl:for-each select="m:datafield[@tag = '100' or @tag = '700']">
          <xsl:call-template name="subfields">
            <xsl:with-param name="names" select="'Author:w'"/>
            <xsl:with-param name="codes" select="'a'"/>
          </xsl:call-template>
        </xsl:for-each>
        <xsl:for-each select="m:datafield[@tag = '245' or @tag = '100' or @tag = '500']">
          <xsl:call-template name="subfields">
            <xsl:with-param name="names" select="'Any:w'"/>
            <xsl:with-param name="codes" select="'a'"/>
          </xsl:call-template>
        </xsl:for-each>
      </z:record>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
